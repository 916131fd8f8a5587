package main

import (
	"os"

	"github.com/c2vm/c2vm/exporter"
	"github.com/spf13/cobra"
)

func runCmd() *cobra.Command {
	var o exporter.BootOptions
	var firmware string
	cmd := &cobra.Command{
		Use:   "run [flags] DISK",
		Short: "Boot a disk in QEMU with the serial console on this terminal",
		Long: `Boot a disk in QEMU (KVM where /dev/kvm works, TCG otherwise) with the
guest's serial console on this terminal. Ctrl-a x quits. With --expect, exit 0
once TEXT has appeared and the guest has powered off, non-zero on timeout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch firmware {
			case "bios":
				o.Firmware = exporter.BIOS
			case "uefi":
				o.Firmware = exporter.UEFI
			default:
				return &exporter.InputError{Msg: "unknown firmware " + firmware, Fix: "use --firmware bios or --firmware uefi"}
			}
			o.Disk, o.Stdout, o.Stdin = args[0], os.Stdout, os.Stdin
			return exporter.Boot(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&firmware, "firmware", "bios", "firmware to boot with: bios or uefi (OVMF)")
	f.StringVar(&o.Expect, "expect", "", "succeed once TEXT appears on the console and the guest powers off")
	f.DurationVar(&o.Timeout, "timeout", 0, "give up after this long (e.g. 5m); 0 waits forever")
	f.StringVar(&o.Accel, "accel", "auto", "accelerator: auto, kvm or tcg (also C2VM_ACCEL)")
	f.StringVar(&o.Memory, "memory", "1024M", "guest memory")
	f.IntVar(&o.CPUs, "cpus", 2, "guest CPUs")
	f.BoolVar(&o.Snapshot, "snapshot", false, "discard the guest's writes to the disk")
	f.BoolVar(&o.QuitOnExpect, "quit-on-expect", false, "with --expect: stop the guest as soon as TEXT appears (e.g. 'login:') instead of waiting for it to power off")
	return cmd
}
