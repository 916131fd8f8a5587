package grub

import (
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/hosttools"
)

// Platform is a GRUB platform, named as GRUB names its module directories.
type Platform string

const (
	PC       Platform = "i386-pc"    // BIOS
	AMD64EFI Platform = "x86_64-efi" // UEFI on x86-64
	ARM64EFI Platform = "arm64-efi"  // UEFI on arm64
)

// Platforms are the platforms a disk of firmware fw for arch boots with.
func Platforms(fw disk.Firmware, arch disk.Arch) []Platform {
	var ps []Platform
	if fw.HasBIOS() && arch != disk.ARM64 {
		ps = append(ps, PC)
	}
	if fw.HasUEFI() {
		ps = append(ps, EFI(arch))
	}
	return ps
}

// EFI is the UEFI platform of arch.
func EFI(arch disk.Arch) Platform {
	if arch == disk.ARM64 {
		return ARM64EFI
	}
	return AMD64EFI
}

// arch is the machine a platform's image runs on.
func (p Platform) arch() disk.Arch {
	if p == ARM64EFI {
		return disk.ARM64
	}
	return disk.AMD64
}

// Package is the Debian package with the platform's modules. The c2vm
// image holds every platform's, whatever its own architecture, so each
// variant makes disks for both machines.
func (p Platform) Package() string {
	return map[Platform]string{PC: "grub-pc-bin", AMD64EFI: "grub-efi-amd64-bin", ARM64EFI: "grub-efi-arm64-bin:arm64"}[p]
}

// modules are what each platform's image holds.
var modules = map[Platform][]string{
	PC: {"biosdisk", "part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid",
		"configfile", "normal", "linux16", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar",
		"gzio", "sleep", "all_video", "keystatus", "regexp", "loadenv"},
	AMD64EFI: {"part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
		"normal", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar", "gzio", "sleep",
		"efi_gop", "efi_uga", "all_video", "keystatus", "regexp", "loadenv"},
	// arm64 has no UGA; its console is the firmware's, which QEMU's
	// AAVMF and the clouds' firmware put on the serial port.
	ARM64EFI: {"part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
		"normal", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar", "gzio", "sleep",
		"efi_gop", "all_video", "keystatus", "regexp", "loadenv"},
}

// libDirs hold GRUB's module directories, tried in order: $C2VM_GRUB_LIB
// alone when set, else the system's and the c2vm image's copy of every
// platform's (its Dockerfile), unpacked from packages of other
// architectures.
func libDirs() []string {
	if d := os.Getenv("C2VM_GRUB_LIB"); d != "" {
		return []string{d}
	}
	return []string{"/usr/lib/grub", "/usr/lib/c2vm/grub"}
}

// Dir returns the platform's module directory as an absolute path, since
// grub-mkimage runs in a scratch directory.
func (p Platform) Dir() (string, error) {
	for _, lib := range libDirs() {
		d := filepath.Join(lib, string(p))
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if _, err := os.Stat(filepath.Join(d, "kernel.img")); err == nil {
			return d, nil
		}
	}
	return "", &hosttools.MissingToolError{Tool: "GRUB for " + string(p), Package: p.Package()}
}

// lookTool and runIn run GRUB's and the ESP's tools; tests replace runIn
// to count what runs.
var (
	lookTool = hosttools.Look
	runIn    = hosttools.RunIn
)
