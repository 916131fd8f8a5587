package authenticode

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// peLayout is what the digest needs from a PE image's headers: where the
// checksum and the certificate table's directory entry sit (both left out
// of the digest), how long the headers are, and the sections' file ranges.
type peLayout struct {
	ChecksumOffset int64 // OptionalHeader.CheckSum
	SecDirOffset   int64 // DataDirectory[IMAGE_DIRECTORY_ENTRY_SECURITY]
	SizeOfHeaders  int64
	CertTable      fileRange // what the security directory names
	Sections       []fileRange
}

// fileRange is a byte range of the file: a section's PointerToRawData and
// SizeOfRawData, or the certificate table.
type fileRange struct{ Offset, Size int64 }

func (r fileRange) end() int64 { return r.Offset + r.Size }

// PE header fields, at offsets from the start of the structure that holds them.
const (
	dosLfanew        = 0x3c // IMAGE_DOS_HEADER.e_lfanew
	coffSize         = 20   // IMAGE_FILE_HEADER
	coffNumSections  = 2    // IMAGE_FILE_HEADER.NumberOfSections
	coffOptSize      = 16   // IMAGE_FILE_HEADER.SizeOfOptionalHeader
	optMagic         = 0    // IMAGE_OPTIONAL_HEADER.Magic
	optSizeOfHeaders = 60
	optCheckSum      = 64
	optDirs32        = 96  // DataDirectory in a PE32 optional header
	optDirs64        = 112 // DataDirectory in a PE32+ optional header
	dirSecurity      = 4   // IMAGE_DIRECTORY_ENTRY_SECURITY
	sectionSize      = 40  // IMAGE_SECTION_HEADER
	secSizeOfRaw     = 16
	secPointerToRaw  = 20
	magicPE32        = 0x10b
	magicPE32Plus    = 0x20b
	maxSections      = 96 // the PE format's own limit
)

var le = binary.LittleEndian

// errNotPE says the file is not a PE image at all.
var errNotPE = errors.New("not a PE image (no MZ and PE headers)")

// readLayout reads a PE image's headers, checking every range against the
// file.
func readLayout(b []byte) (*peLayout, error) {
	size := int64(len(b))
	if size < 0x40 || string(b[:2]) != "MZ" {
		return nil, errNotPE
	}
	pe := int64(le.Uint32(b[dosLfanew:]))
	if pe+4+coffSize > size || string(b[pe:pe+4]) != "PE\x00\x00" {
		return nil, errNotPE
	}
	coff := pe + 4
	opt := coff + coffSize
	optSize := int64(le.Uint16(b[coff+coffOptSize:]))
	nsec := int64(le.Uint16(b[coff+coffNumSections:]))
	if optSize < 2 || opt+optSize > size || nsec > maxSections {
		return nil, fmt.Errorf("PE headers run past the end of the file")
	}
	var dirs, numDirs int64
	switch le.Uint16(b[opt+optMagic:]) {
	case magicPE32: // NumberOfRvaAndSizes is the field before DataDirectory
		dirs, numDirs = opt+optDirs32, opt+optDirs32-4
	case magicPE32Plus:
		dirs, numDirs = opt+optDirs64, opt+optDirs64-4
	default:
		return nil, fmt.Errorf("unknown PE optional header magic")
	}
	l := &peLayout{ChecksumOffset: opt + optCheckSum, SecDirOffset: dirs + dirSecurity*8}
	if l.SecDirOffset+8 > opt+optSize || le.Uint32(b[numDirs:]) <= dirSecurity {
		return nil, fmt.Errorf("the PE optional header has no certificate table entry")
	}
	l.SizeOfHeaders = int64(le.Uint32(b[opt+optSizeOfHeaders:]))
	l.CertTable = fileRange{int64(le.Uint32(b[l.SecDirOffset:])), int64(le.Uint32(b[l.SecDirOffset+4:]))}
	secs := opt + optSize
	if secs+nsec*sectionSize > l.SizeOfHeaders || l.SizeOfHeaders > size {
		return nil, fmt.Errorf("PE section table or SizeOfHeaders runs past the end of the file")
	}
	for i := range nsec {
		s := b[secs+i*sectionSize:]
		r := fileRange{int64(le.Uint32(s[secPointerToRaw:])), int64(le.Uint32(s[secSizeOfRaw:]))}
		if r.Size == 0 {
			continue
		}
		if r.end() > size {
			return nil, fmt.Errorf("PE section %d runs past the end of the file", i)
		}
		l.Sections = append(l.Sections, r)
	}
	// As shim: the table closes the file, after the headers.
	if l.CertTable.Size != 0 && (l.CertTable.end() != size || l.CertTable.Offset < l.SizeOfHeaders) {
		return nil, fmt.Errorf("the PE certificate table is not at the end of the file")
	}
	return l, nil
}

// digest writes into h the bytes Authenticode signs, in the order shim
// hashes them: the headers less the checksum and the certificate-table
// entry, the sections by file offset, then whatever follows the last
// section but the certificate table.
func (l *peLayout) digest(b []byte, h hash.Hash) error {
	h.Write(b[:l.ChecksumOffset])
	h.Write(b[l.ChecksumOffset+4 : l.SecDirOffset])
	h.Write(b[l.SecDirOffset+8 : l.SizeOfHeaders])
	secs := slices.Clone(l.Sections)
	slices.SortFunc(secs, func(a, b fileRange) int { return cmp.Compare(a.Offset, b.Offset) })
	hashed := l.SizeOfHeaders
	for _, s := range secs {
		h.Write(b[s.Offset:s.end()])
		hashed += s.Size
	}
	rest := int64(len(b)) - l.CertTable.Size
	if hashed > int64(len(b)) {
		return fmt.Errorf("the PE sections overlap")
	}
	if rest > hashed {
		h.Write(b[hashed:rest])
	}
	return nil
}

// Range is a byte range of an image.
type Range struct{ Offset, Size int64 }

// CertTable returns where an image's certificate table lies; Size is 0 for
// an unsigned image.
func CertTable(img []byte) (Range, error) {
	l, err := readLayout(img)
	if err != nil {
		return Range{}, err
	}
	return Range(l.CertTable), nil
}

// ClearCertTable zeroes the certificate-table entry of img in place, so
// that it reads as unsigned: what an image cut before its table needs.
func ClearCertTable(img []byte) error {
	l, err := readLayout(img)
	if err != nil {
		return err
	}
	clear(img[l.SecDirOffset : l.SecDirOffset+8])
	return nil
}
