package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// elfHeader is an ELF64 little-endian file header, read and patched
// through its fields' offsets.
type elfHeader []byte

func (h elfHeader) phoff() uint64     { return binary.LittleEndian.Uint64(h[0x20:]) }
func (h elfHeader) phentsize() uint64 { return uint64(binary.LittleEndian.Uint16(h[0x36:])) }

// dropSections clears e_shoff, e_shnum and e_shstrndx: no section headers.
func (h elfHeader) dropSections() {
	binary.LittleEndian.PutUint64(h[0x28:], 0)
	binary.LittleEndian.PutUint16(h[0x3C:], 0)
	binary.LittleEndian.PutUint16(h[0x3E:], 0)
}

// stripInit drops what the kernel's loader never maps from a static
// ELF64 executable: the bytes past its program headers and segments. In
// Go's binaries that is the DWARF debug information, the symbol table
// and their names, a third of c2vm's 37 MB, which the initramfs would
// otherwise carry into every direct boot for nothing (the init reads
// none of it). The section headers, which describe what is cut, go too;
// the program headers alone make the executable. Anything that is not
// such an executable is returned as it is.
func stripInit(b []byte) []byte {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC {
		return b
	}
	h := elfHeader(b)
	end := h.phoff() + uint64(len(f.Progs))*h.phentsize()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return b
		}
		end = max(end, p.Off+p.Filesz)
	}
	if end >= uint64(len(b)) {
		return b
	}
	out := append([]byte(nil), b[:end]...)
	elfHeader(out).dropSections()
	return out
}
