package vmrun

import (
	"fmt"
	"slices"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// The hardware other hypervisors give a VM, so that a disk can be tried on
// it here: the NIC models and disk controllers they use by default, and
// the older i440FX machine beside q35.

var (
	nicModels = []string{"virtio-net-pci", "e1000", "e1000e", "vmxnet3", "rtl8139"}
	machines  = []string{"q35", "pc"}
	diskBuses = []string{"virtio", "virtio-scsi", "sata", "ide", "nvme", "pvscsi"}
)

// hardware is the checked choice.
type hardware struct {
	nics    []string
	machine string
	bus     string
	noROM   bool // NICs without their option ROM (for network boot), which a firmware-less boot never runs
}

// checkHardware checks the hardware options for a guest of arch. Before
// the disk tells its arch (""), --machine virt stands for arm64 and any
// other machine for amd64.
func checkHardware(o Options, arch string) (hardware, error) {
	if arch == "" && o.Machine == virtMachine {
		arch = archARM64
	}
	if arch == archARM64 {
		return checkARMHardware(o)
	}
	h := hardware{machine: o.Machine, bus: o.DiskBus, nics: []string{"virtio-net-pci"}}
	if h.machine == "" {
		h.machine = "q35"
	}
	if h.machine == virtMachine {
		return h, usererr.New("--machine virt is QEMU's arm64 machine, and this disk is amd64", "use --machine q35 or pc, or --arch arm64 if the disk is arm64")
	}
	if h.bus == "" {
		h.bus = "virtio"
	}
	if err := h.checkNICs(o.NIC); err != nil {
		return h, err
	}
	if !slices.Contains(machines, h.machine) {
		return h, usererr.New(fmt.Sprintf("unknown machine %q", h.machine), "use q35 or pc (virt for an arm64 disk)")
	}
	if !slices.Contains(diskBuses, h.bus) {
		return h, usererr.New(fmt.Sprintf("unknown disk bus %q", h.bus), "use one of "+strings.Join(diskBuses, ", "))
	}
	if h.bus == "ide" && h.machine != "pc" {
		return h, usererr.New("--disk-bus ide needs the pc machine (q35 has no IDE controller)", "add --machine pc, or use --disk-bus sata")
	}
	return h, nil
}

// checkARMHardware checks the hardware options for the virt machine.
func checkARMHardware(o Options) (hardware, error) {
	h := hardware{machine: virtMachine, bus: o.DiskBus, nics: []string{"virtio-net-pci"}}
	if h.bus == "" {
		h.bus = "virtio"
	}
	if o.Machine != "" && !slices.Contains(armMachines, o.Machine) {
		return h, usererr.New(fmt.Sprintf("arm64 disks run on QEMU's virt machine, not --machine %s", o.Machine),
			"drop --machine (or use --machine virt)")
	}
	if !slices.Contains(armDiskBuses, h.bus) {
		return h, usererr.New(fmt.Sprintf("--disk-bus %s: the arm64 machine (virt with AAVMF) cannot boot from it", h.bus),
			"use --disk-bus virtio (the default), virtio-scsi or nvme for an arm64 disk")
	}
	return h, h.checkNICs(o.NIC)
}

// checkNICs sets h's NICs from --nic's list and checks them.
func (h *hardware) checkNICs(list string) error {
	if list != "" {
		h.nics = strings.Split(list, ",")
	}
	for _, n := range h.nics {
		if !slices.Contains(nicModels, n) {
			return usererr.New(fmt.Sprintf("unknown NIC model %q", n), "use one or more, comma-separated, of "+strings.Join(nicModels, ", "))
		}
	}
	if len(h.nics) > 8 {
		return usererr.New("more than 8 NICs", "give at most 8 models to --nic")
	}
	return nil
}

// diskArgs attaches the boot disk (drive value d, already escaped) on the
// chosen controller.
func (h hardware) diskArgs(d string) []string {
	node := []string{"-drive", d + ",if=none,id=disk0"}
	switch h.bus {
	case "virtio-scsi":
		return append(append([]string{"-device", "virtio-scsi-pci,id=scsi0"}, node...), "-device", "scsi-hd,drive=disk0,bus=scsi0.0")
	case "pvscsi":
		return append(append([]string{"-device", "pvscsi,id=scsi0"}, node...), "-device", "scsi-hd,drive=disk0,bus=scsi0.0")
	case "sata":
		return append(append([]string{"-device", "ahci,id=ahci0"}, node...), "-device", "ide-hd,drive=disk0,bus=ahci0.0")
	case "nvme":
		return append(node, "-device", "nvme,drive=disk0,serial=c2vm0")
	case "ide":
		return []string{"-drive", d + ",if=ide"}
	}
	return []string{"-drive", d + ",if=virtio"}
}

// nicArgs gives each NIC its own user network (each gets 10.0.2.15 from
// its own DHCP server); forwards go to the first.
func (h hardware) nicArgs(first string) []string {
	var args []string
	for i, model := range h.nics {
		netdev := fmt.Sprintf("user,id=net%d", i)
		if i == 0 {
			netdev = first
		}
		dev := fmt.Sprintf("%s,netdev=net%d", model, i)
		if h.noROM {
			dev += ",romfile="
		}
		args = append(args, "-netdev", netdev, "-device", dev)
	}
	return args
}

// firmwareBusNote warns of a pair that the firmware here may not boot:
// OVMF builds without a PVSCSI driver (Debian 12's, measured by the world
// tests' matrix: its shell maps no disk) cannot read a disk on pvscsi,
// while SeaBIOS and VMware's own UEFI firmware can.
func firmwareBusNote(fw, bus string) string {
	if fw == "uefi" && bus == "pvscsi" {
		return "UEFI firmware needs a PVSCSI driver to boot from --disk-bus pvscsi, and OVMF builds such as Debian's have none (it then finds no disk and ends in its shell); use --firmware bios to try pvscsi here, or another --disk-bus under UEFI"
	}
	return ""
}
