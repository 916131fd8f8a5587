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
	ftDirCsum = 0xDE // EXT4_FT_DIR_CSUM: marks the fake entry that holds a leaf's checksum
)

const (
	dirTailLen = 12                     // sizeof(struct ext4_dir_entry_tail), the checksum tail of a leaf block
	leafSpace  = blockSize - dirTailLen // bytes for entries in a leaf block
	dotsLen    = 24                     // "." and ".." entries
	maxLinks   = 65000                  // EXT4_LINK_MAX
	maxNameLen = 255                    // EXT4_NAME_LEN
	// maxEntryLen is the size of an entry with the longest name.
	maxEntryLen = (direntNameOffset + maxNameLen + 3) &^ 3
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

// recLen is the size of an entry: the fixed fields and the name, padded to
// 4 bytes (EXT4_DIR_REC_LEN).
func recLen(nameLen int) int { return (direntNameOffset + nameLen + 3) &^ 3 }

// putDirent fills an entry's fields and name.
func putDirent(d ext4DirEntry2, ino uint32, recLen int, typ uint8, name string) {
	le := binary.LittleEndian
	le.PutUint32(d.inode(), ino)
	le.PutUint16(d.rec_len(), uint16(recLen))
	*d.name_len() = uint8(len(name))
	*d.file_type() = typ
	copy(d.name(), name)
}

// leafBuilder fills one directory block with entries.
type leafBuilder struct {
	b    []byte
	off  int
	last int // offset of the last entry, whose rec_len absorbs the slack
}

func newLeaf(b []byte) *leafBuilder { clear(b); return &leafBuilder{b: b, last: -1} }

func (l *leafBuilder) fits(nameLen int) bool { return l.off+recLen(nameLen) <= leafSpace }

func (l *leafBuilder) add(ino uint32, typ uint8, name string) {
	r := recLen(len(name))
	putDirent(ext4DirEntry2(l.b[l.off:]), ino, r, typ, name)
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
	le.PutUint16(ext4DirEntry2(l.b[l.last:]).rec_len(), uint16(leafSpace-l.last))
	t := (*ext4DirEntryTail)(l.b[leafSpace:])
	le.PutUint32(t.det_reserved_zero1(), 0)
	le.PutUint16(t.det_rec_len(), dirTailLen)
	*t.det_reserved_zero2() = 0
	*t.det_reserved_ft() = ftDirCsum
	le.PutUint32(t.det_checksum(), crc32c(seed, l.b[:leafSpace]))
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
