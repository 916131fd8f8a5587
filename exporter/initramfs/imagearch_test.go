package initramfs

import (
	"encoding/binary"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/ocitest"
)

func TestImageArch(t *testing.T) {
	bz := make([]byte, HeadSize)
	copy(bz, "MZ")
	copy(bz[0x202:], "HdrS")
	arm := make([]byte, HeadSize)
	copy(arm, "MZ")
	copy(arm[56:], "ARM\x64")
	pe := func(machine uint16, at uint32) []byte {
		b := make([]byte, 512)
		copy(b, "MZ")
		binary.LittleEndian.PutUint32(b[0x3c:], at)
		if int(at)+6 <= len(b) {
			copy(b[at:], "PE\x00\x00")
			binary.LittleEndian.PutUint16(b[at+4:], machine)
		}
		return b
	}
	for _, c := range []struct {
		name string
		head []byte
		want disk.Arch
		ok   bool
	}{
		{"bzImage", bz, disk.AMD64, true},
		{"arm64 Image", arm, disk.ARM64, true},
		{"arm64 zboot PE", pe(0xaa64, 0x40), disk.ARM64, true},
		{"x86-64 PE", pe(0x8664, 0x80), disk.AMD64, true},
		{"riscv PE", pe(0x5064, 0x80), "", false},
		{"PE offset past the head", pe(0xaa64, 0xfffffff0), "", false},
		{"PE offset at the end", pe(0xaa64, 508), "", false},
		{"gzip'd arm64 Image", ocitest.Gzip(arm), disk.ARM64, true},
		{"gzip'd arm64 Image, cut short", ocitest.Gzip(arm)[:12], "", false},
		{"gzip header only", []byte{0x1f, 0x8b, 8, 0}, "", false},
		{"empty", nil, "", false},
		{"short MZ", []byte("MZ"), "", false},
	} {
		if got, ok := ImageArch(c.head); got != c.want || ok != c.ok {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// Debian's kernel in the boot tests' fixture reads as amd64.
func TestImageArchFixtureKernel(t *testing.T) {
	k := fixtureKernel(t)
	f, err := k.OpenImage()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, HeadSize)
	n, _ := f.Read(head)
	if a, ok := ImageArch(head[:n]); a != disk.AMD64 || !ok {
		t.Errorf("%s: %q, %v", f.Name(), a, ok)
	}
}
