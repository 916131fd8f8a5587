package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/c2vm/c2vm/vmrun"
	"github.com/spf13/cobra"
)

// The commands for named VMs: those c2vm run keeps in its state directory,
// in the foreground or detached.

// supervisorCommand is the hidden command that runs a detached VM.
const supervisorCommand = "vm-supervisor"

func lsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the VMs c2vm run keeps: name, state, disk, forwarded ports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vms, err := vmrun.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATE\tDISK\tPORTS")
			for _, v := range vms {
				var ports []string
				for _, f := range v.Forwards {
					ports = append(ports, fmt.Sprintf("%s:%d->%d", f.HostIP, f.Host, f.Guest))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", v.Name, v.Status(), v.Disk, strings.Join(ports, ","))
			}
			return w.Flush()
		},
	}
}

func stopCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop [flags] NAME",
		Short: "Power a running VM off: its power button, then a hard stop after --timeout",
		Long: `Press the running VM's ACPI power button and wait --timeout for the guest to
power off; then stop QEMU hard.

Exit status: 0 when the guest powered off (or the VM was not running); 137
when it had to be stopped hard; 1 on any other failure, with a message.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout == 0 {
				timeout = -1 // 0 on the command line means at once
			}
			return exitStatus(vmrun.Stop(args[0], timeout, os.Stderr))
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", vmrun.DefaultStopTimeout, "how long the guest gets to power off after its power button; 0 stops it hard at once")
	return cmd
}

func sshCmd() *cobra.Command {
	var timeout time.Duration
	var identity string
	cmd := &cobra.Command{
		Use:   "ssh [flags] NAME [COMMAND...]",
		Short: "Log in to a running VM over SSH, once its SSH server answers",
		Long: `Wait up to --timeout for the VM's SSH server to answer on its forwarded port 22,
then run ssh as the user the disk's keys are for (c2vm.json's sshUser), with
the VM's own known_hosts: its host key is accepted on first use and checked
after that. -i picks the private key (else ssh's defaults and agent);
COMMAND, if given, runs in the guest.

Exit status: ssh's; 1 when the VM does not run, its disk has no SSH keys,
or its server did not answer in time.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv, err := vmrun.SSHArgs(cmd.Context(), args[0], timeout, identity, args[1:], os.Stderr)
			if err != nil {
				return err
			}
			ssh, err := exec.LookPath("ssh")
			if err != nil {
				return usererr.New("ssh is not installed", "install the Debian package openssh-client (apt-get install openssh-client)")
			}
			return syscall.Exec(ssh, argv, os.Environ())
		},
	}
	// Words after NAME are the guest's command, flags included.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().DurationVar(&timeout, "timeout", vmrun.DefaultReadyTimeout, "how long to wait for the VM's SSH server to answer")
	cmd.Flags().StringVarP(&identity, "identity", "i", "", "the private key to log in with (ssh -i; only that one is offered)")
	return cmd
}

func logsCmd() *cobra.Command {
	return oneVMCmd("logs [flags] NAME", "Print a VM's serial console (its current or last run)",
		"follow", "go on printing while the VM runs",
		func(cmd *cobra.Command, name string, follow bool) error {
			return vmrun.Logs(cmd.Context(), name, follow, os.Stdout)
		})
}

func rmCmd() *cobra.Command {
	return oneVMCmd("rm [flags] NAME", "Remove a VM: its overlay (the guest's writes), UEFI variables and logs",
		"force", "stop a running VM hard first",
		func(cmd *cobra.Command, name string, force bool) error {
			return vmrun.Remove(name, force, os.Stderr)
		})
}

// oneVMCmd is a command on one VM with one boolean flag (and its first
// letter for short).
func oneVMCmd(use, short, flag, usage string, run func(cmd *cobra.Command, name string, on bool) error) *cobra.Command {
	var on bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return run(cmd, args[0], on) },
	}
	cmd.Flags().BoolVarP(&on, flag, flag[:1], false, usage)
	return cmd
}

// supervisorCmd runs a VM that c2vm run --detach started.
func supervisorCmd() *cobra.Command {
	return &cobra.Command{
		Use:    supervisorCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return vmrun.Supervise(cmd.Context())
		},
	}
}
