// Command c2vm turns container images into bootable virtual machine disks.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/c2vm/c2vm/frontend"
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
	root.AddCommand(assembleCmd(), runCmd(), buildCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "c2vm: %v\n", err)
		os.Exit(1)
	}
}
