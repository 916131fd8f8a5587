package secureboot

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"io"
	"regexp"
)

// moduleInfo heads GRUB's "mods" section (struct grub_module_info64): the
// objects grub-mkimage put in the image, the modules, the embedded config
// and the prefix among them, each after a moduleHeader.
type moduleInfo struct {
	Magic   uint32 // "mimg"
	Padding uint32
	Offset  uint64
	Size    uint64
}

type moduleHeader struct {
	Type uint32
	Size uint32 // with the header
}

const (
	moduleMagic   = 0x676d696d
	objTypePrefix = 3 // OBJ_TYPE_PREFIX
	maxMods       = 64 << 20
)

// vendorName is what a distribution's directory on the ESP may be called.
var vendorName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// GRUBVendor returns the distribution directory a signed GRUB image reads
// its grub.cfg from, "debian" for the prefix /EFI/debian, or "" when the
// image names none that c2vm would write.
func GRUBVendor(img []byte) string {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return ""
	}
	s := f.Section("mods")
	if s == nil || s.Size > maxMods {
		return ""
	}
	mods, err := io.ReadAll(io.LimitReader(s.Open(), maxMods))
	if err != nil || len(mods) < 24 {
		return ""
	}
	var info moduleInfo
	binary.Read(bytes.NewReader(mods), binary.LittleEndian, &info)
	if info.Magic != moduleMagic || info.Offset > info.Size || info.Size > uint64(len(mods)) {
		return ""
	}
	b := mods[info.Offset:info.Size]
	for len(b) >= 8 {
		h := moduleHeader{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])}
		if h.Size < 8 || uint64(h.Size) > uint64(len(b)) {
			return ""
		}
		if h.Type == objTypePrefix {
			p := string(bytes.TrimRight(b[8:h.Size], "\x00"))
			if v, ok := cutEFI(p); ok && vendorName.MatchString(v) {
				return v
			}
			return ""
		}
		b = b[h.Size:]
	}
	return ""
}

// cutEFI returns NAME from /EFI/NAME.
func cutEFI(p string) (string, bool) {
	const pre = "/EFI/"
	if len(p) <= len(pre) || p[:len(pre)] != pre {
		return "", false
	}
	return p[len(pre):], true
}
