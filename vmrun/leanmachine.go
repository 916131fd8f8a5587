package vmrun

import (
	"os"
	"slices"
)

// The direct boot's machine: q35 without the devices a kernel started by
// QEMU has no use for. Without SATA, SMBus, i8042 and VMware's port, QEMU's
// defaults (VGA, CD-ROM, floppy) and the NIC's option ROM, the kernel
// probes less, and qboot, a firmware that only loads a kernel, starts in
// a fraction of SeaBIOS's time. Under TCG this machine and qboot took
// 0.3–0.7 s from QEMU's start to the kernel's clock, against 0.6–1.7 s for
// q35 with SeaBIOS (docs/fast-loop.md). Its power button, ACPI power-off
// and virtio devices are the same as q35's.
const leanMachine = "q35,sata=off,smbus=off,i8042=off,vmport=off"

// qbootPath is Debian's qboot (package qemu-system-data); without it the
// machine keeps SeaBIOS.
var qbootPath = "/usr/share/qemu/qboot.rom"

// leanHardware tells whether the run's hardware is what the lean machine
// gives: q35, a virtio disk and virtio NICs, no screen. Other hardware is
// what a user asks for to try a disk on it, and gets the machine it asked
// for with the disk's own, complete initramfs.
func (p *plan) leanHardware() bool {
	hw, err := checkHardware(p.o, p.arch)
	if err != nil || hw.machine != "q35" || hw.bus != "virtio" || p.o.Display == "vnc" || p.o.Display == "gtk" {
		return false
	}
	return !slices.ContainsFunc(hw.nics, func(n string) bool { return n != "virtio-net-pci" })
}

// leanArgs are the lean machine's own arguments.
func leanArgs() []string {
	args := []string{"-nodefaults"}
	if fi, err := os.Stat(qbootPath); err == nil && fi.Mode().IsRegular() {
		args = append(args, "-bios", qbootPath)
	}
	return args
}
