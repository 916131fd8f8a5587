package initramfs

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"

	"github.com/c2vm/c2vm/exporter/disk"
)

// HeadSize is how much of a kernel image ImageArch reads.
const HeadSize = 4096

// ImageArch tells which machine a kernel image is for, from its first
// bytes: an x86 boot protocol header ("HdrS" at 0x202), an arm64 Image
// header ("ARM\x64" at 56), or the machine field of a PE header (arm64's
// compressed EFI images, zboot). A gzip-compressed Image (Ubuntu's arm64
// kernels) is read through gzip, as far as the head goes. ok is false for
// anything else.
func ImageArch(head []byte) (arch disk.Arch, ok bool) {
	if len(head) > 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(head))
		if err != nil {
			return "", false
		}
		inner := make([]byte, 1024)
		n, _ := io.ReadFull(zr, inner)
		return rawImageArch(inner[:n])
	}
	return rawImageArch(head)
}

// rawImageArch is ImageArch for an image that is not compressed as a whole.
func rawImageArch(head []byte) (arch disk.Arch, ok bool) {
	const (
		x86Magic   = 0x202
		arm64Magic = 56
		peOffset   = 0x3c
	)
	switch {
	case len(head) >= x86Magic+4 && string(head[x86Magic:x86Magic+4]) == "HdrS":
		return disk.AMD64, true
	case len(head) >= arm64Magic+4 && string(head[arm64Magic:arm64Magic+4]) == "ARM\x64":
		return disk.ARM64, true
	case len(head) < peOffset+4 || string(head[:2]) != "MZ":
		return "", false
	}
	pe := int(binary.LittleEndian.Uint32(head[peOffset:]))
	if pe < 0 || pe > len(head)-6 || string(head[pe:pe+4]) != "PE\x00\x00" {
		return "", false
	}
	switch binary.LittleEndian.Uint16(head[pe+4:]) {
	case 0x8664:
		return disk.AMD64, true
	case 0xaa64:
		return disk.ARM64, true
	}
	return "", false
}
