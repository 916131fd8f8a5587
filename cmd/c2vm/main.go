// Command c2vm turns container images into bootable virtual machine disks.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "c2vm",
		Short:         "Turn container images into bootable virtual machine disks",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(assembleCmd(), runCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "c2vm: %v\n", err)
		os.Exit(1)
	}
}
