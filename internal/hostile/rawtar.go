package hostile

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// Raw tar blocks for attacks archive/tar's writer cannot write: old GNU
// sparse headers, their extension blocks, and headers hidden in data.
// Fields have the places and names archive/tar's format.go gives them.

const blockSize = 512

// block is one 512-byte tar block.
type block []byte

func (b block) name() []byte     { return b[0:][:100] }
func (b block) mode() []byte     { return b[100:][:8] }
func (b block) size() []byte     { return b[124:][:12] }
func (b block) modTime() []byte  { return b[136:][:12] }
func (b block) chksum() []byte   { return b[148:][:8] }
func (b block) typeFlag() []byte { return b[156:][:1] }
func (b block) magic() []byte    { return b[257:][:8] } // magic and version

// sparse is an old GNU header's four sparse entries and its isExtended
// flag; realSize is the sparse file's logical size.
func (b block) sparse() []byte   { return b[386:][:4*24+1] }
func (b block) realSize() []byte { return b[483:][:12] }

// header is what an attack sets in a header block.
type header struct {
	Name       string
	Mode       int64
	Size       int64
	Typeflag   byte
	GNU        bool          // GNU's magic "ustar  \x00", else POSIX's "ustar\x0000"
	Sparse     []sparseEntry // old GNU: up to four, in the header
	IsExtended bool          // old GNU: extension blocks follow
	RealSize   int64         // old GNU: the logical size
}

type sparseEntry struct{ Offset, Length int64 }

func (h header) block() block {
	b := block(make([]byte, blockSize))
	copy(b.name(), h.Name)
	octal(b.mode(), h.Mode)
	octal(b.size(), h.Size)
	octal(b.modTime(), 1700000000)
	b.typeFlag()[0] = h.Typeflag
	copy(b.magic(), "ustar\x0000")
	if h.GNU {
		copy(b.magic(), "ustar  \x00")
		putSparse(b.sparse(), h.Sparse, h.IsExtended)
		octal(b.realSize(), h.RealSize)
	}
	b.setChksum()
	return b
}

// putSparse writes entries into a sparse array and sets its isExtended
// flag, the byte after the array's last entry.
func putSparse(array []byte, entries []sparseEntry, more bool) {
	for i, e := range entries {
		octal(array[24*i:][:12], e.Offset)
		octal(array[24*i+12:][:12], e.Length)
	}
	if more {
		array[len(array)/24*24] = 1
	}
}

func octal(field []byte, v int64) {
	copy(field, fmt.Sprintf("%0*o\x00", len(field)-1, v))
}

// setChksum writes the block's checksum as tar does.
func (b block) setChksum() {
	copy(b.chksum(), fmt.Sprintf("%06o\x00 ", b.sum()))
}

// sum is the block's bytes summed with the checksum field counted as
// spaces: what the checksum field must hold.
func (b block) sum() int {
	copy(b.chksum(), "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	return sum
}

// padded is data followed by NULs to a whole number of blocks.
func padded(data string) string {
	return data + strings.Repeat("\x00", (blockSize-len(data)%blockSize)%blockSize)
}

// rawTar is an archive holding blocks as they are, after an empty PAX
// header (which every reader skips), so that nothing rewrites them.
func rawTar(blocks ...string) *ocitest.Tar {
	return ocitest.NewTar().RawPAX("", 'x', "", 0, nil, strings.Join(blocks, ""))
}
