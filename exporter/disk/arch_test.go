package disk

import (
	"strings"
	"testing"
)

func TestParseArch(t *testing.T) {
	for in, want := range map[string]Arch{"": AMD64, "amd64": AMD64, "x86_64": AMD64, "ARM64": ARM64, "aarch64": ARM64} {
		if got, err := ParseArch(in); err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"riscv64", "arm", "amd64;reboot", "arm64/v8"} {
		if _, err := ParseArch(bad); err == nil || !strings.Contains(err.Error(), "use amd64 or arm64") {
			t.Errorf("ParseArch(%q): %v", bad, err)
		}
	}
}

// An arm64 disk has an ESP and no BIOS boot partition, and its root has
// the arm64 root type, which systemd-repart's Type=root matches there.
func TestLayoutARM64(t *testing.T) {
	fw, err := ARM64.Firmware(Hybrid)
	if err != nil || fw != UEFI {
		t.Fatalf("hybrid on arm64: %q, %v", fw, err)
	}
	if _, err := ARM64.Firmware(BIOS); err == nil || !strings.Contains(err.Error(), "no BIOS") {
		t.Errorf("bios on arm64: %v", err)
	}
	if fw, _ := AMD64.Firmware(Hybrid); fw != Hybrid {
		t.Errorf("hybrid on amd64 became %q", fw)
	}
	l, err := NewLayout(fw, ARM64, 100*MiB, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.BIOSBoot != nil || l.ESP == nil || l.Root.Type != TypeRootARM64 {
		t.Errorf("arm64 layout: %+v", l.Parts)
	}
	if !strings.Contains(l.SfdiskScript("00000000-0000-0000-0000-000000000001"), "type="+TypeRootARM64) {
		t.Errorf("sfdisk script lacks the arm64 root type:\n%s", l.SfdiskScript("00000000-0000-0000-0000-000000000001"))
	}
	if c := ARM64.Consoles(); c[len(c)-1] != "console=ttyAMA0,115200" {
		t.Errorf("arm64 consoles %q: /dev/console must be the PL011", c)
	}
}
