package vmrun

import (
	"fmt"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Secure Boot (Options.SecureBoot) boots OVMF's enforcing build with a
// variable store in which Microsoft's KEK and db are enrolled, as on a PC
// sold with Windows. That build keeps its variables behind SMM, so the
// guest's OS cannot rewrite the keys. Debian's build of it runs only on
// q35 with SMM on.

// ovmf is one OVMF build and the template of its variable store.
type ovmf struct {
	tool     string // what a missing file is called
	code     string // in ovmfDir
	vars     string // the template, in ovmfDir
	varsFile string // the VM's copy of the template
	// globals are QEMU options the build needs besides its two drives.
	globals []string
	arm64   bool // AAVMF, in aavmfDir
}

var (
	plainOVMF = ovmf{tool: "UEFI firmware (OVMF)", code: "OVMF_CODE_4M.fd", vars: "OVMF_VARS_4M.fd", varsFile: varsFile}
	// secureOVMF's variable store has a file name of its own in the VM's
	// directory: its keys and boot entries never mix with the plain one's,
	// so a VM can switch between the two.
	secureOVMF = ovmf{tool: "UEFI Secure Boot firmware (OVMF)", code: "OVMF_CODE_4M.secboot.fd", vars: "OVMF_VARS_4M.ms.fd", varsFile: secbootVarsFile,
		// Only code running in SMM may then write the variable store.
		globals: []string{"-global", "driver=cfi.pflash01,property=secure,value=on"}}
)

// secureBootLabel names the firmware in the run's note.
const secureBootLabel = "UEFI Secure Boot (enforcing, Microsoft keys)"

// uefiBuild is the UEFI build the run boots.
func (p *plan) uefiBuild() ovmf {
	if p.arch == archARM64 {
		return plainAAVMF
	}
	if p.o.SecureBoot {
		return secureOVMF
	}
	return plainOVMF
}

// secureMachine turns on SMM, which the Secure Boot build needs, on the
// q35 machine checkSecureBoot left.
func secureMachine(machine string) string { return machine + ",smm=on" }

// firmwareNote says which firmware file a Secure Boot run boots, since the
// guest itself only shows whether it booted.
func firmwareNote(code string) string {
	return fmt.Sprintf("c2vm: firmware: %s: %s", secureBootLabel, code)
}

// checkSecureBoot refuses options that would boot something other than
// the Secure Boot firmware on q35 with SMM. --boot kernel is checkBoot's.
func checkSecureBoot(o Options) error {
	if !o.SecureBoot {
		return nil
	}
	if o.Firmware == "bios" {
		return usererr.New("--secure-boot boots UEFI firmware, and --firmware bios asks for SeaBIOS",
			"drop --firmware bios (or use --firmware uefi), or drop --secure-boot")
	}
	if o.Machine != "" && o.Machine != "q35" {
		return usererr.New(fmt.Sprintf("--secure-boot needs the q35 machine, not --machine %s: OVMF's Secure Boot build runs only on q35 with SMM", o.Machine),
			"use --machine q35 (the default), or drop --secure-boot")
	}
	if o.DiskBus == "ide" {
		return usererr.New("--disk-bus ide needs the pc machine, and --secure-boot needs q35, which has no IDE controller",
			"use --disk-bus sata (or another bus) with --secure-boot")
	}
	return nil
}
