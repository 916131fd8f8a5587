package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// File types in directory entries (the filetype feature).
const (
	ftReg     = 1
	ftDir     = 2
	ftChr     = 3
	ftBlk     = 4
	ftFifo    = 5
	ftSymlink = 7
)

const (
	dirTailLen = 12                     // checksum tail of a leaf block
	leafSpace  = blockSize - dirTailLen // bytes for entries in a leaf block
	dotsLen    = 24                     // "." and ".." entries
	maxLinks   = 65000                  // EXT4_LINK_MAX
)

type dirent struct {
	name string
	ino  uint32
	typ  uint8
}

// dirData is a directory's content until Close lays it out.
type dirData struct {
	parent  uint32
	ents    []dirent
	subdirs uint32
}

// recLen is the size of an entry: 8 bytes of header and the name, padded
// to 4 bytes.
func recLen(nameLen int) int { return (8 + nameLen + 3) &^ 3 }

// leafBuilder fills one directory block with entries.
type leafBuilder struct {
	b    []byte
	off  int
	last int // offset of the last entry, whose rec_len absorbs the slack
}

func newLeaf(b []byte) *leafBuilder { clear(b); return &leafBuilder{b: b, last: -1} }

func (l *leafBuilder) fits(nameLen int) bool { return l.off+recLen(nameLen) <= leafSpace }

func (l *leafBuilder) add(ino uint32, typ uint8, name string) {
	le := binary.LittleEndian
	r := recLen(len(name))
	le.PutUint32(l.b[l.off:], ino)
	le.PutUint16(l.b[l.off+4:], uint16(r))
	l.b[l.off+6] = uint8(len(name))
	l.b[l.off+7] = typ
	copy(l.b[l.off+8:], name)
	l.last = l.off
	l.off += r
}

// finish stretches the last entry to the tail (an empty block gets one
// unused entry spanning it) and writes the checksum tail.
func (l *leafBuilder) finish(seed uint32) {
	le := binary.LittleEndian
	if l.last < 0 {
		l.add(0, 0, "")
	}
	le.PutUint16(l.b[l.last+4:], uint16(leafSpace-l.last))
	t := l.b[leafSpace:]
	le.PutUint32(t[0:], 0)
	le.PutUint16(t[4:], dirTailLen)
	t[6] = 0
	t[7] = 0xDE // EXT4_DIR_TAIL_FT: marks the fake entry that holds the checksum
	le.PutUint32(t[8:], crc32c(seed, l.b[:leafSpace]))
}

// linearSize is the bytes a directory's entries take in one block.
func linearSize(ents []dirent) int {
	n := dotsLen
	for _, e := range ents {
		n += recLen(len(e.name))
	}
	return n
}

// dirContent lays out a directory: one block sorted by name when it fits
// (padded with empty blocks to minBlocks), else a hash tree.
func (w *Writer) dirContent(ino uint32, d *dirData, minBlocks int) ([]byte, bool, error) {
	seed := inodeSeed(w.seed, ino)
	if linearSize(d.ents) > leafSpace {
		b, err := w.htree(ino, d, seed)
		return b, true, err
	}
	sort.Slice(d.ents, func(i, j int) bool { return d.ents[i].name < d.ents[j].name })
	out := make([]byte, max(minBlocks, 1)*blockSize)
	l := newLeaf(out[:blockSize])
	l.add(ino, ftDir, ".")
	l.add(d.parent, ftDir, "..")
	for _, e := range d.ents {
		l.add(e.ino, e.typ, e.name)
	}
	l.finish(seed)
	for i := blockSize; i < len(out); i += blockSize {
		newLeaf(out[i : i+blockSize]).finish(seed)
	}
	return out, false, nil
}

// writeDirs lays out every directory's blocks after the file data.
func (w *Writer) writeDirs() error {
	for i, in := range w.inodes {
		if in == nil || in.dir == nil {
			continue
		}
		ino := uint32(i + 1)
		minBlocks := 1
		if ino == lostFoundIno {
			minBlocks = lostFoundSize // room for e2fsck to reconnect files without allocating
		}
		b, indexed, err := w.dirContent(ino, in.dir, minBlocks)
		if err != nil {
			return err
		}
		n := uint64(len(b) / blockSize)
		exts, err := w.alloc.takeExtents(0, n)
		if err != nil {
			return fmt.Errorf("directory blocks of inode %d: %w", ino, err)
		}
		for _, e := range exts {
			w.out.write(e.pblk, b[uint64(e.lblk)*blockSize:uint64(e.lblk+e.n)*blockSize])
		}
		in.exts, in.dataBlocks, in.size = exts, n, n*blockSize
		if indexed {
			in.flags |= flagIndex
		}
		in.links = 2 + in.dir.subdirs
		if in.links > maxLinks {
			in.links = 1 // dir_nlink: too many to count
		}
		in.dir.ents = nil
	}
	return nil
}
