// Package hosttools finds and runs the Debian tools c2vm execs (sfdisk,
// GRUB, mtools, qemu-img, QEMU), naming the package to install when one is
// missing.
package hosttools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Packages maps each tool c2vm execs to the Debian package that ships it.
var Packages = map[string]string{
	"mke2fs":             "e2fsprogs",
	"tune2fs":            "e2fsprogs",
	"debugfs":            "e2fsprogs",
	"e2fsck":             "e2fsprogs",
	"sfdisk":             "fdisk",
	"mkfs.vfat":          "dosfstools",
	"mcopy":              "mtools",
	"mmd":                "mtools",
	"grub-mkimage":       "grub-common",
	"qemu-img":           "qemu-utils",
	"qemu-system-x86_64": "qemu-system-x86",
	// QEMU for arm64 guests: Debian builds it with the 32-bit Arm one.
	"qemu-system-aarch64": "qemu-system-arm",
}

// Firmware maps the UEFI firmware files c2vm run boots, by file name, to
// the Debian package that ships them.
var Firmware = map[string]string{
	"OVMF_CODE_4M.fd":         "ovmf",
	"OVMF_VARS_4M.fd":         "ovmf",
	"OVMF_CODE_4M.secboot.fd": "ovmf",
	"OVMF_VARS_4M.ms.fd":      "ovmf",
	"AAVMF_CODE.fd":           "qemu-efi-aarch64",
	"AAVMF_VARS.fd":           "qemu-efi-aarch64",
}

// MissingToolError names a tool that is not installed and its package.
type MissingToolError struct{ Tool, Package string }

func (e *MissingToolError) Error() string {
	return usererr.New(e.Tool+" is not installed",
		fmt.Sprintf("install the Debian package %s (apt-get install %s), or run c2vm from its image", e.Package, e.Package)).Error()
}

// Missing names the package of a tool Packages does not know: the tool's
// own name.
func Missing(name string, err error) error {
	var m *MissingToolError
	if errors.As(err, &m) && m.Package == "" {
		return &MissingToolError{Tool: name, Package: name}
	}
	return err
}

// Look finds a tool on PATH or in the sbin directories an unprivileged
// user's PATH often lacks.
func Look(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingToolError{Tool: name, Package: Packages[name]}
}

// Run executes a tool with arguments passed as a list (never through a
// shell) and folds its output into the error when it fails.
func Run(ctx context.Context, stdin []byte, env []string, name string, args ...string) error {
	return RunIn(ctx, "", stdin, env, name, args...)
}

// RunIn is Run in directory dir, so that callers can name files relative to
// it: a user's path (spaces, '?', '@@', ':', ',') never reaches a tool's own
// file-name syntax.
func RunIn(ctx context.Context, dir string, stdin []byte, env []string, name string, args ...string) error {
	p, err := Look(name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
