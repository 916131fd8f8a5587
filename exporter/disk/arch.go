package disk

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Arch is the machine a disk boots on, named as Go and OCI platforms name
// it.
type Arch string

const (
	AMD64 Arch = "amd64"
	ARM64 Arch = "arm64"
)

// ParseArch checks an --arch value; the kernel's and uname's names are
// accepted too, and "" is amd64.
func ParseArch(s string) (Arch, error) {
	switch strings.ToLower(s) {
	case "", "amd64", "x86_64", "x86-64":
		return AMD64, nil
	case "arm64", "aarch64":
		return ARM64, nil
	}
	return "", usererr.New(fmt.Sprintf("unknown architecture %q", s), "use amd64 or arm64 (--platform linux/amd64 or linux/arm64)")
}

// Discoverable Partitions Specification root types, so that systemd's
// tools (repart's Type=root, gpt-auto) recognise the root of each machine.
const (
	TypeRootX64   = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	TypeRootARM64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
)

// RootType is the root partition's type GUID on a disk of a.
func (a Arch) RootType() string {
	if a == ARM64 {
		return TypeRootARM64
	}
	return TypeRootX64
}

// Consoles are the kernel's console arguments. The last one is
// /dev/console, where the init and the login prompt are. arm64 machines
// have a PL011 (ttyAMA0: QEMU's virt machine, Azure, Google's Tau T2A) or
// a 16550 (ttyS0: AWS Graviton): both are named, the PL011 last.
func (a Arch) Consoles() []string {
	if a == ARM64 {
		return []string{"console=tty0", "console=ttyS0,115200", "console=ttyAMA0,115200"}
	}
	return []string{"console=tty0", "console=ttyS0,115200"}
}

// Firmware is the firmware a disk of a carries when fw is asked for:
// arm64 machines boot only through UEFI, so hybrid (every firmware the
// machine has) is UEFI there and BIOS is an error.
func (a Arch) Firmware(fw Firmware) (Firmware, error) {
	if a != ARM64 || fw == UEFI {
		return fw, nil
	}
	if fw == BIOS {
		return "", usererr.New("arm64 machines have no BIOS: an arm64 disk boots only through UEFI",
			"leave --firmware (C2VM_FIRMWARE) out, or set it to uefi")
	}
	return UEFI, nil
}
