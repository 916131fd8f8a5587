// Package diskmeta is the small file c2vm writes next to linux.img
// (c2vm.json) so that `c2vm run` knows what the disk needs without reading
// its filesystem: the mode, the firmware it boots with, the ports the image
// exposes.
package diskmeta

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// FileName is the metadata file beside the disk files.
const FileName = "c2vm.json"

// maxSize bounds what Read accepts: the file sits in an output directory
// that anyone may have edited.
const maxSize = 1 << 20

// Meta describes a disk.
type Meta struct {
	// Mode is "system" (the image's own init) or "app" (c2vm's kernel and
	// init run the image's program; the console ends with its exit code).
	Mode string `json:"mode"`
	// Firmware is "hybrid", "bios" or "uefi".
	Firmware string `json:"firmware"`
	// ExposedPorts are the image's EXPOSE entries, such as "8000/tcp".
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	// SSHUser is the account c2vm gave SSH public keys (root, or
	// C2VM_USER); empty when it gave none.
	SSHUser string `json:"sshUser,omitempty"`
	// CloudInit says the disk has cloud-init (C2VM_CLOUD_INIT=1), which
	// reads a NoCloud seed such as c2vm run --cloud-init attaches.
	CloudInit bool `json:"cloudInit,omitempty"`
	// SecureBoot says the UEFI path boots through a signed chain (shim,
	// the distribution's GRUB and a signed kernel), so the disk boots
	// with Secure Boot on.
	SecureBoot bool `json:"secureBoot,omitempty"`
	// Arch is the machine the disk boots on, as Go and OCI name it:
	// "amd64" or "arm64". Disks written before it existed are amd64.
	Arch string `json:"arch,omitempty"`
}

// Machine is m's architecture, amd64 when the file does not say.
func (m *Meta) Machine() string {
	if m == nil || m.Arch == "" {
		return "amd64"
	}
	return m.Arch
}

// Write stores m as dir/c2vm.json.
func Write(dir string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileName), append(b, '\n'), 0o644)
}

// ForDisk reads the metadata beside a disk file; it returns nil and no
// error when there is none.
func ForDisk(disk string) (*Meta, error) {
	p := filepath.Join(filepath.Dir(disk), FileName)
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSize)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	return &m, nil
}

// loginName is what useradd accepts by default (NAME_REGEX): the user
// name goes into an ssh command line that c2vm run prints for pasting.
var loginName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// maxExposed bounds the ports c2vm run forwards from the file.
const maxExposed = 1024

// check refuses values c2vm never writes: the file may have been edited by
// anyone the disk passed through.
func (m *Meta) check() error {
	switch m.Mode {
	case "", "system", "app":
	default:
		return fmt.Errorf("mode %q is neither system nor app", m.Mode)
	}
	switch m.Firmware {
	case "", "hybrid", "bios", "uefi":
	default:
		return fmt.Errorf("firmware %q is not hybrid, bios or uefi", m.Firmware)
	}
	switch m.Arch {
	case "", "amd64", "arm64":
	default:
		return fmt.Errorf("arch %q is neither amd64 nor arm64", m.Arch)
	}
	if m.SSHUser != "" && !loginName.MatchString(m.SSHUser) {
		return fmt.Errorf("sshUser %q is not a login name (lowercase letters, digits, _ and -, at most 32)", m.SSHUser)
	}
	if len(m.ExposedPorts) > maxExposed {
		return fmt.Errorf("%d exposed ports; at most %d", len(m.ExposedPorts), maxExposed)
	}
	return nil
}
