package vmrun

import "os"

// arm64 guests run on QEMU's virt machine: PCIe for every device, a PL011
// UART as its first serial port (the guest's ttyAMA0, QEMU's -serial), no
// BIOS, no ISA or IDE, and UEFI from AAVMF, the arm64 build of the same
// firmware as OVMF.

// qemuARM64Binary is the emulator of arm64 guests; tests replace it with a
// stand-in.
var qemuARM64Binary = "qemu-system-aarch64"

// qemuFor is the QEMU binary of a guest of arch.
func qemuFor(arch string) string {
	if arch == archARM64 {
		return qemuARM64Binary
	}
	return qemuBinary
}

// aavmfDir is where Debian's qemu-efi-aarch64 package puts AAVMF.
var aavmfDir = "/usr/share/AAVMF"

// plainAAVMF is AAVMF without Secure Boot: c2vm's arm64 disks have no
// signed chain (checkArch). Its variable store has a file name of its own
// in the VM's directory, apart from OVMF's.
var plainAAVMF = ovmf{tool: "arm64 UEFI firmware (AAVMF)", code: "AAVMF_CODE.fd", vars: "AAVMF_VARS.fd", varsFile: aavmfVarsFile, arm64: true}

const virtMachine = "virt"

// The hardware of the virt machine: every NIC model amd64 runs offer (all
// are PCI devices), and the disk controllers AAVMF boots from. Debian
// 12's AAVMF finds no disk on AHCI or PVSCSI (measured: its shell maps
// none), while it boots from virtio-blk and NVMe. virt has no IDE
// controller.
var (
	armDiskBuses = []string{"virtio", "virtio-scsi", "nvme"}
	armMachines  = []string{virtMachine}
)

// armMachine is the -machine value. Under KVM the interrupt controller is
// the host's own version: virt's default, GICv2, is missing from many
// arm64 hosts.
func armMachine(accel string) string {
	if accel == "kvm" {
		return virtMachine + ",gic-version=host"
	}
	return virtMachine
}

// armCPU is the -cpu value: the host's CPU under KVM, else the most
// complete CPU TCG emulates, which any arm64 kernel runs on. With
// impdef, its pointer authentication uses QEMU's own algorithm instead of
// emulating the architected QARMA5, which costs most of an emulated
// boot's time: Debian 12's arm64 kernel in app mode powered off 7 s
// after it started instead of 25 s (QEMU 7.2, measured). The guest's
// kernel finds pointer authentication either way.
func armCPU(accel string, impdef bool) string {
	switch {
	case accel == "kvm":
		return "host"
	case impdef:
		return "max,pauth-impdef=on"
	}
	return "max"
}

// pauthImpdefKnown tells from `qemu -version`'s output whether that QEMU
// has the pauth-impdef property (6.0 and later); an unknown version is
// given plain max, which every QEMU takes.
func pauthImpdefKnown(version string) bool { return versionAtLeast(version, 6, 0) }

// armDisplayArgs give a run with a screen what virt lacks: a graphics
// card AAVMF and Linux both drive, and a keyboard, as virt has no PS/2.
func armDisplayArgs(display string) []string {
	if display != "vnc" && display != "gtk" {
		return nil
	}
	return []string{"-device", "virtio-gpu-pci", "-device", "qemu-xhci,id=usb0", "-device", "usb-kbd,bus=usb0.0"}
}

// armKVMAccel is an arm64 host's accelerator for an arm64 guest: KVM
// when /dev/kvm opens for writing, else TCG.
func armKVMAccel() string {
	f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	return "kvm"
}

// kvmDevice is KVM's device; tests replace it.
var kvmDevice = "/dev/kvm"
