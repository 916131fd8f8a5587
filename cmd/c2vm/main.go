// Command c2vm turns container images into bootable virtual machine disks.
//
// One static binary plays four roles, in four places:
//
//	where it runs     how it starts                      code
//	host              c2vm assemble, build, run, ls,     cmd/c2vm (assemble.go, build.go,
//	                  logs, ssh, stop, rm                run.go, vms.go), exporter, vmrun
//	BuildKit          the frontend image's entrypoint,   frontend, llb, bootstrap
//	(frontend)        no arguments, BUILDKIT_SESSION_ID
//	build step        RUN steps the frontend adds, in    cmd/c2vm (step_*.go), exporter
//	                  the c2vm image: c2vm assemble,     (assembly step), bootstrap/accounts
//	                  guest-config, convert              (guest-config)
//	guest (app mode)  the initramfs's /init, as PID 1    appinit (guest_init.go starts it)
//
// The texts that run inside a VM (systemd units, scripts, GRUB's script)
// are written by bootstrap (bootstrap/guesttexts.go), exporter
// (exporter/guesttexts.go) and exporter/grub (config.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/frontend"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/c2vm/c2vm/vmrun"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=…"; the Makefile
// and the c2vm image use git describe).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// BuildKit starts a frontend image's entrypoint with no arguments and
	// the gateway API on stdio.
	if len(os.Args) == 1 && os.Getenv("BUILDKIT_SESSION_ID") != "" {
		fe := &frontend.Frontend{}
		if err := grpcclient.RunFromEnvironment(ctx, fe.Build); err != nil {
			fmt.Fprintf(os.Stderr, "c2vm frontend: %v\n", err)
			os.Exit(1)
		}
		return
	}
	root := &cobra.Command{
		Use:           "c2vm",
		Short:         "Turn container images into bootable virtual machine disks",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("c2vm {{.Version}}\n")
	root.AddCommand(assembleCmd(), runCmd(), buildCmd(), guestConfigCmd(), convertCmd(),
		lsCmd(), stopCmd(), sshCmd(), logsCmd(), rmCmd(), supervisorCmd())
	explainUsage(root)
	if err := root.ExecuteContext(ctx); err != nil {
		// c2vm run of an app-mode disk exits with the program's code.
		var exit *vmrun.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		if strings.HasPrefix(err.Error(), "unknown command") {
			err = usererr.New(err.Error(), "c2vm --help lists the commands")
		}
		fmt.Fprintf(os.Stderr, "c2vm: %v\n", err)
		os.Exit(1)
	}
}

// explainUsage gives command-line mistakes (a missing argument, an unknown
// or malformed flag) the same "fix:" line as every other error.
func explainUsage(root *cobra.Command) {
	wrap := func(c *cobra.Command, err error) error {
		return usererr.New(err.Error(), fmt.Sprintf("usage: c2vm %s (c2vm %s --help says more)", strings.TrimPrefix(c.Use, "c2vm "), c.Name()))
	}
	root.SetFlagErrorFunc(wrap)
	for _, c := range root.Commands() {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return wrap(cmd, err)
				}
				return nil
			}
		}
	}
}
