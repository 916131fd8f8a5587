// Command c2vm turns container images into bootable virtual machine disks.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/c2vm/c2vm/frontend"
	"github.com/c2vm/c2vm/vmrun"
	"github.com/moby/buildkit/frontend/gateway/grpcclient"
	"github.com/spf13/cobra"
)

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
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(assembleCmd(), runCmd(), buildCmd(), guestConfigCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		// c2vm run of an app-mode disk exits with the program's code.
		var exit *vmrun.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintf(os.Stderr, "c2vm: %v\n", err)
		os.Exit(1)
	}
}
