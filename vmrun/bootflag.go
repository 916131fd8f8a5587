package vmrun

import (
	"fmt"

	"github.com/c2vm/c2vm/internal/usererr"
)

// How a run starts the disk (Options.Boot).
const (
	bootAuto     = "auto"     // an app disk's kernel directly, any other disk through its firmware
	bootFirmware = "firmware" // the firmware and the disk's GRUB, as every hypervisor boots it
	bootKernel   = "kernel"   // the kernel and initramfs read from the disk, started by QEMU
)

// checkBoot validates Options.Boot against the other options.
func checkBoot(o Options) error {
	switch o.Boot {
	case "", bootAuto, bootFirmware:
		return nil
	case bootKernel:
		if o.SecureBoot {
			return usererr.New("--boot kernel starts the kernel without firmware, so --secure-boot would check no signature",
				"use --boot firmware (or auto) to boot through the Secure Boot firmware, or drop --secure-boot")
		}
		if o.Firmware == "bios" || o.Firmware == "uefi" {
			return usererr.New(fmt.Sprintf("--boot kernel starts the kernel without the disk's firmware, so --firmware %s has nothing to do", o.Firmware),
				"drop --firmware to start the kernel directly, or use --boot firmware to boot through that firmware")
		}
		return nil
	}
	return usererr.New(fmt.Sprintf("unknown boot path %q", o.Boot), "use --boot auto, firmware or kernel")
}
