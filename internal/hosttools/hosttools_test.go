package hosttools

import (
	"errors"
	"strings"
	"testing"
)

// A tool or firmware file that is missing names the Debian package that
// ships it, for amd64 and arm64 guests alike.
func TestPackages(t *testing.T) {
	for _, c := range []struct {
		table      map[string]string
		name, want string
	}{
		{Packages, "qemu-system-x86_64", "qemu-system-x86"},
		{Packages, "qemu-system-aarch64", "qemu-system-arm"},
		{Packages, "qemu-img", "qemu-utils"},
		{Firmware, "OVMF_CODE_4M.fd", "ovmf"},
		{Firmware, "AAVMF_CODE.fd", "qemu-efi-aarch64"},
		{Firmware, "AAVMF_VARS.fd", "qemu-efi-aarch64"},
	} {
		if got := c.table[c.name]; got != c.want {
			t.Errorf("%s: package %q, want %q", c.name, got, c.want)
		}
	}
}

func TestMissingToolError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Look("c2vm-no-such-tool")
	var m *MissingToolError
	if !errors.As(err, &m) {
		t.Fatalf("got %v", err)
	}
	err = &MissingToolError{Tool: "qemu-system-aarch64", Package: Packages["qemu-system-aarch64"]}
	if !strings.Contains(err.Error(), "apt-get install qemu-system-arm") {
		t.Errorf("message: %v", err)
	}
}
