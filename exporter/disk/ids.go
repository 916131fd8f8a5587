package disk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Disk, partition and filesystem ids derive from the input's digest: the
// same input gives the same bytes, different inputs different ids.

// DeriveUUID makes a version 4 style UUID from a digest and a purpose.
func DeriveUUID(digest []byte, purpose string) string {
	h := sha256.Sum256(append(append([]byte{}, digest...), purpose...))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// deriveSerial makes a 32-bit FAT volume serial.
func deriveSerial(digest []byte, purpose string) uint32 {
	h := sha256.Sum256(append(append([]byte{}, digest...), purpose...))
	return binary.LittleEndian.Uint32(h[:4])
}

// IDs are every identifier a disk carries.
type IDs struct {
	Disk, Root, ESPPart, BIOSPart string // GPT GUIDs
	RootFS                        string // ext4 UUID
	ESPSerial                     uint32
}

// DeriveIDs derives every id of a disk from the digest of its content.
func DeriveIDs(digest []byte) IDs {
	return IDs{
		Disk:      DeriveUUID(digest, "gpt-disk"),
		Root:      DeriveUUID(digest, "part-root"),
		ESPPart:   DeriveUUID(digest, "part-esp"),
		BIOSPart:  DeriveUUID(digest, "part-bios"),
		RootFS:    DeriveUUID(digest, "fs-root"),
		ESPSerial: deriveSerial(digest, "fs-esp"),
	}
}

// FATSerial prints a FAT serial the way GRUB's search and blkid show it.
func FATSerial(s uint32) string { return fmt.Sprintf("%04X-%04X", s>>16, s&0xffff) }

// UUIDBytes parses a UUID DeriveUUID made.
func UUIDBytes(u string) [16]byte {
	var b [16]byte
	hex.Decode(b[:], []byte(strings.ReplaceAll(u, "-", "")))
	return b
}
