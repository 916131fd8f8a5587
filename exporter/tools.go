package exporter

import (
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/internal/hosttools"
)

// lookTool and runIn are the shared tool helpers; a missing tool is reported
// with its Debian package.
var (
	lookTool = hosttools.Look
	runIn    = hosttools.RunIn
)

// MissingToolError names a tool that is not installed and its package.
type MissingToolError = hosttools.MissingToolError

// GRUB's platform module directories, with their packages.
var grubPlatforms = map[string]string{
	"i386-pc":    "grub-pc-bin",
	"x86_64-efi": "grub-efi-amd64-bin",
}

// grubDir returns the module directory of a GRUB platform.
func grubDir(platform string) (string, error) {
	d := filepath.Join(os.Getenv("C2VM_GRUB_LIB"), platform)
	if os.Getenv("C2VM_GRUB_LIB") == "" {
		d = filepath.Join("/usr/lib/grub", platform)
	}
	// Absolute: grub-mkimage runs in a scratch directory.
	if abs, err := filepath.Abs(d); err == nil {
		d = abs
	}
	if _, err := os.Stat(filepath.Join(d, "kernel.img")); err != nil {
		return "", &MissingToolError{Tool: "GRUB for " + platform, Package: grubPlatforms[platform]}
	}
	return d, nil
}
