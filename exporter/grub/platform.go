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
)

// Platforms are the platforms a disk of firmware fw boots with.
func Platforms(fw disk.Firmware) []Platform {
	var ps []Platform
	if fw.HasBIOS() {
		ps = append(ps, PC)
	}
	if fw.HasUEFI() {
		ps = append(ps, AMD64EFI)
	}
	return ps
}

// Package is the Debian package with the platform's modules.
func (p Platform) Package() string {
	return map[Platform]string{PC: "grub-pc-bin", AMD64EFI: "grub-efi-amd64-bin"}[p]
}

// modules are what each platform's image holds.
var modules = map[Platform][]string{
	PC: {"biosdisk", "part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid",
		"configfile", "normal", "linux16", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar",
		"gzio", "sleep", "all_video", "keystatus", "regexp", "loadenv"},
	AMD64EFI: {"part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
		"normal", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar", "gzio", "sleep",
		"efi_gop", "efi_uga", "all_video", "keystatus", "regexp", "loadenv"},
}

// Dir returns the platform's module directory: under $C2VM_GRUB_LIB when
// set, else /usr/lib/grub, as an absolute path, since grub-mkimage runs in
// a scratch directory.
func (p Platform) Dir() (string, error) {
	d := filepath.Join(os.Getenv("C2VM_GRUB_LIB"), string(p))
	if os.Getenv("C2VM_GRUB_LIB") == "" {
		d = filepath.Join("/usr/lib/grub", string(p))
	}
	if abs, err := filepath.Abs(d); err == nil {
		d = abs
	}
	if _, err := os.Stat(filepath.Join(d, "kernel.img")); err != nil {
		return "", &hosttools.MissingToolError{Tool: "GRUB for " + string(p), Package: p.Package()}
	}
	return d, nil
}

// lookTool and runIn run GRUB's and the ESP's tools; tests replace runIn
// to count what runs.
var (
	lookTool = hosttools.Look
	runIn    = hosttools.RunIn
)
