package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/c2vm/c2vm/vmrun"
	"github.com/spf13/cobra"
)

func runCmd() *cobra.Command {
	var o vmrun.Options
	var cpus string
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] DISK",
		Short: "Boot a disk in QEMU with the serial console on this terminal",
		Long: `Boot a disk in QEMU (KVM where a test guest runs under it, else TCG) with the
guest's serial console on this terminal; Ctrl-a x quits QEMU at once.

DISK is only read: the guest boots an overlay kept in the VM's state
directory ($XDG_STATE_HOME/c2vm/vms/NAME), so running it again continues the
same VM. The name is --name, else the disk's file name with 8 hex digits of
its path. --snapshot discards the guest's writes at exit; --in-place writes
DISK itself (never for a disk you mean to upload). --detach runs the VM in
the background: c2vm ls, logs, ssh, stop and rm take its name.

An app-mode disk starts its kernel directly, without firmware and GRUB
(--boot auto; --boot firmware boots it as other hypervisors do). The
firmware follows the disk's partition table (--firmware auto); --secure-boot
boots UEFI with Secure Boot enforced and Microsoft's keys. An arm64 disk
(c2vm.json's arch, or --arch arm64) boots with qemu-system-aarch64 on the
virt machine and AAVMF, through its firmware, under KVM only on an arm64
host: elsewhere it is emulated and takes minutes to boot. Ports the image
exposes (c2vm.json beside the disk) are forwarded to 127.0.0.1; -p adds
forwards like docker run -p; --ssh forwards one to the guest's SSH server and
prints the ssh command once it answers; --wait-port waits for other ports.
--cloud-init FILE gives cloud-init in the guest its user-data. SIGINT,
SIGTERM, SIGHUP and c2vm stop press the guest's power button and wait
--stop-timeout for it to power off.

Exit status: 0 when the guest powered off by itself (or on the power button)
and --expect's TEXT appeared; an app-mode disk's program exit code; 137 when
the guest was powered off hard (Ctrl-a x, no power-off within --stop-timeout,
QEMU killed); 1 on a timeout or any other failure, with a message.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := vmrun.ParseCPUs(cpus)
			if err != nil {
				return err
			}
			o.CPUs = n
			if o.StopTimeout == 0 {
				o.StopTimeout = -1 // 0 on the command line means at once
			}
			o.Disk, o.Stdin, o.Stdout, o.Stderr = args[0], os.Stdin, os.Stdout, os.Stderr
			if detach {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding c2vm's own binary to run the VM in the background: %v", err)
				}
				return exitStatus(vmrun.Detach(cmd.Context(), o, []string{exe, supervisorCommand}))
			}
			return exitStatus(vmrun.Run(cmd.Context(), o))
		},
	}
	// Flag syntax errors get the same shape as every other c2vm error.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usererr.New(err.Error(), "see c2vm run --help")
	})
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "the VM's name (its state directory; what c2vm ls, logs, ssh, stop and rm take); default: the disk's file name and 8 hex digits of its path")
	f.BoolVarP(&detach, "detach", "d", false, "run the VM in the background, its console going to c2vm logs NAME; return once it runs (and --ssh, --wait-port answer)")
	f.BoolVar(&o.Snapshot, "snapshot", false, "discard the guest's writes at exit (a temporary overlay)")
	f.BoolVar(&o.InPlace, "in-place", false, "write the guest's writes into DISK itself (and grow it to --disk-size); a disk booted once carries that boot's SSH host keys, machine-id and logs: never upload it as an image")
	f.StringVar(&o.Firmware, "firmware", "auto", "firmware: auto (from the disk's partition table), bios or uefi (OVMF; an arm64 disk always boots AAVMF)")
	f.BoolVar(&o.SecureBoot, "secure-boot", false, "boot UEFI with Secure Boot enforced: OVMF's Secure Boot build with Microsoft's keys enrolled, on q35 with SMM, and a variable store of its own; not with --firmware bios, --machine pc, --boot kernel or an arm64 disk")
	f.StringVar(&o.Boot, "boot", "auto", "how the disk starts: auto (an app disk's kernel directly, unless --firmware names one or --secure-boot is given; other disks through their firmware), firmware (firmware and GRUB, as other hypervisors boot it) or kernel (QEMU starts the kernel and initramfs read from the disk)")
	f.StringVar(&o.Expect, "expect", "", "succeed only if TEXT appears on the console (and the guest then powers off)")
	f.BoolVar(&o.QuitOnExpect, "quit-on-expect", false, "with --expect: stop the guest as soon as TEXT appears (e.g. 'login:') instead of waiting for it to power off")
	f.DurationVar(&o.Timeout, "timeout", 0, "fail, stopping the guest, if it still runs after this long (e.g. 5m); 0 waits forever")
	f.DurationVar(&o.StopTimeout, "stop-timeout", vmrun.DefaultStopTimeout, "on SIGINT, SIGTERM, SIGHUP or c2vm stop, how long the guest gets to power off after its power button before QEMU is stopped; 0 stops at once")
	f.DurationVar(&o.ReadyTimeout, "ready-timeout", vmrun.DefaultReadyTimeout, "how long --ssh and --wait-port wait for the guest's ports to answer; then the run fails and the guest is stopped")
	f.IntSliceVar(&o.WaitPorts, "wait-port", nil, "wait until the guest's TCP port PORT answers (forwarded from a free port on 127.0.0.1 unless -p or the image forwards it) and say so; repeatable")
	f.StringVar(&o.Accel, "accel", "auto", "accelerator: auto, kvm or tcg (also C2VM_ACCEL)")
	f.StringVar(&o.Memory, "memory", "1024M", "guest memory: N with K, M, G or T (a bare N is MiB)")
	f.StringVar(&cpus, "cpus", "2", "guest CPUs")
	f.BoolVar(&o.AllowExternal, "allow-external", false, "boot a disk that reads other files (a qcow2 backing or data file, a VMDK's extents or parent); refused by default, since QEMU would open whatever host file it names")
	f.StringVar(&o.DiskSize, "disk-size", vmrun.DefaultDiskSize, "the least virtual size the guest's disk (its overlay; with --in-place DISK, grown sparse) gets; the root grows into it at boot; keep leaves the size as it is")
	f.StringVar(&o.NIC, "nic", "", "NIC model(s), comma-separated: virtio-net-pci (default), e1000, e1000e, vmxnet3, rtl8139; each on its own user network")
	f.StringVar(&o.Machine, "machine", "", "QEMU machine: q35 (the default) or pc (i440FX) for an amd64 disk; an arm64 disk runs on virt")
	f.StringVar(&o.DiskBus, "disk-bus", "virtio", "disk controller: virtio, virtio-scsi, sata (AHCI), ide (with --machine pc), nvme or pvscsi; an arm64 disk takes virtio, virtio-scsi or nvme")
	f.StringVar(&o.Arch, "arch", "auto", "the disk's machine: auto (its c2vm.json, else the boot loader on its ESP, else amd64), amd64 or arm64 (qemu-system-aarch64's virt machine with AAVMF; emulated, so slow, unless the host is arm64 with KVM)")
	f.StringArrayVarP(&o.Ports, "publish", "p", nil, "forward a host TCP port: HOST:GUEST (all host addresses) or IP:HOST:GUEST; repeatable")
	f.BoolVar(&o.NoExpose, "no-expose", false, "do not forward the ports the image exposes (c2vm.json)")
	f.StringVar(&o.QMP, "qmp", "", "also serve QEMU's QMP monitor on this Unix socket")
	f.BoolVar(&o.SSH, "ssh", false, "forward a free port on 127.0.0.1 to the guest's SSH server (port 22) and print the ssh command once it answers")
	f.StringVar(&o.CloudInit, "cloud-init", "", "attach a NoCloud seed with this cloud-init user-data (for disks built with C2VM_CLOUD_INIT=1)")
	f.StringVar(&o.Display, "display", "none", "the guest's screen: none (serial console only; QMP screendump still works), vnc (on 127.0.0.1) or gtk")
	return cmd
}

// exitStatus gives a guest powered off hard its exit status, 137, after
// printing why: main prints other errors itself and exits 1.
func exitStatus(err error) error {
	var hard *vmrun.PoweredOffHard
	if errors.As(err, &hard) {
		fmt.Fprintf(os.Stderr, "c2vm: %v\n", hard)
		return &vmrun.ExitError{Code: vmrun.HardStopCode}
	}
	return err
}
