package vmrun

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/usererr"
)

// The machines c2vm's disks boot on, named as Go and OCI name them.
const (
	archAMD64 = "amd64"
	archARM64 = "arm64"
)

// hostArch is the machine c2vm runs on; tests replace it.
var hostArch = runtime.GOARCH

// explicitArch is Options.Arch when it names a machine, "" for auto.
func explicitArch(o Options) string {
	if o.Arch == archAMD64 || o.Arch == archARM64 {
		return o.Arch
	}
	return ""
}

// checkArchValue validates Options.Arch alone.
func checkArchValue(o Options) error {
	switch o.Arch {
	case "", "auto", archAMD64, archARM64:
		return nil
	}
	return usererr.New(fmt.Sprintf("unknown architecture %q", o.Arch), "use --arch auto, amd64 or arm64")
}

// resolveArch is the machine the disk boots on: --arch, else its
// c2vm.json (which says amd64 by leaving the field out), else its ESP's
// fallback boot loader. A disk that says nothing boots as amd64, as every
// disk did before arm64 ones existed.
func (p *plan) resolveArch(ctx context.Context) string {
	if a := explicitArch(p.o); a != "" {
		return a
	}
	if p.meta != nil {
		return p.meta.Machine()
	}
	if p.head != nil {
		if a, ok := archFromDisk(ctx, p.o.Disk, p.image.Format, p.head); ok {
			return a
		}
	}
	return archAMD64
}

// checkArch refuses what an arm64 disk cannot do: the run's options, or
// its c2vm.json, ask for something only x86 machines have. arch "" (not
// known yet) checks nothing.
func checkArch(o Options, arch string, meta *diskmeta.Meta) error {
	if arch != archARM64 {
		return nil
	}
	if o.SecureBoot {
		return usererr.New("--secure-boot: c2vm's arm64 disks have no signed boot chain yet (no signed shim and GRUB for arm64), so the firmware would refuse to boot them",
			"drop --secure-boot to boot the arm64 disk with Secure Boot off")
	}
	if o.Firmware == "bios" {
		return usererr.New("--firmware bios: arm64 machines have no BIOS; they boot UEFI (AAVMF)",
			"drop --firmware, or use --firmware uefi")
	}
	if meta != nil && meta.Firmware == "bios" {
		return usererr.New("the disk's c2vm.json says it boots with BIOS only, and arm64 machines have no BIOS",
			"rebuild the disk with C2VM_FIRMWARE=uefi (c2vm assemble --firmware uefi), or pass --arch amd64 if it is an amd64 disk")
	}
	if o.Boot == bootKernel {
		return usererr.New("--boot kernel starts x86 kernels (bzImage) only, and this disk is arm64",
			"use --boot auto or --boot firmware: arm64 disks boot through their firmware and GRUB")
	}
	return nil
}

// pickArchAccel chooses the accelerator for a guest of arch: pickAccel's
// choice for the host's own machine, TCG for another, since KVM runs only
// guests of the host's architecture.
func pickArchAccel(a, qemu, arch string) (string, error) {
	if a == "" || a == "auto" {
		a = os.Getenv("C2VM_ACCEL")
	}
	if arch == hostArch {
		if arch == archARM64 && (a == "" || a == "auto") {
			return armKVMAccel(), nil
		}
		return pickAccel(a, qemu)
	}
	switch a {
	case "", "auto", "tcg":
		return "tcg", nil
	case "kvm":
		return "", usererr.New(fmt.Sprintf("KVM runs only guests of the host's own architecture, and this %s disk is on an %s host", arch, hostArch),
			"use --accel tcg (or auto), and unset C2VM_ACCEL=kvm")
	}
	return pickAccel(a, qemu)
}

// emulationNote says that a guest of another architecture than the
// host's, or an arm64 one without KVM, runs under TCG, which translates
// every instruction. Debian 12 on arm64 took 84 s from c2vm run's start
// to its login prompt on this 2-core amd64 host (measured), against
// seconds under KVM. An amd64 guest under TCG on an amd64 host gets no note, as before
// arm64 disks existed.
func emulationNote(arch, accelKind string) string {
	switch {
	case accelKind != "tcg":
		return ""
	case arch != hostArch:
		return fmt.Sprintf("c2vm: note: this %s disk runs under emulation (TCG) on this %s host: it is slow, a minute or more to boot", arch, hostArch)
	case arch == archARM64:
		return "c2vm: note: no usable KVM here, so this arm64 disk runs under emulation (TCG): it is slow, a minute or more to boot"
	}
	return ""
}
