package ext4

import (
	"encoding/binary"
	"time"
)

const (
	extraIsize = 32 // bytes of extra fields after the first 128: times, crtime, checksum hi

	flagIndex   = 0x1000  // EXT4_INDEX_FL: hash-tree directory
	flagExtents = 0x80000 // EXT4_EXTENTS_FL

	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// Timestamps: 32 signed bits of seconds plus two epoch bits hold 1901-12-13
// to 2446-05-10, but e2fsck (until 2242) takes the high epoch bits with a
// negative base, 2310-04-04 to 2378, for an old kernel's encoding of
// pre-1970 times and "fixes" them. Later times are clamped below that.
const (
	minTime = -1 << 31
	maxTime = 3<<32 - 1<<31 - 1
)

type timestamp struct {
	sec  int64
	nsec uint32
}

// stamp converts a time, clamped to what ext4 can hold (as the kernel does).
func stamp(t time.Time) timestamp {
	s := t.Unix()
	switch {
	case s < minTime:
		return timestamp{minTime, 0}
	case s > maxTime:
		return timestamp{maxTime, 999999999}
	}
	return timestamp{s, uint32(t.Nanosecond())}
}

// encode splits a time into the inode's 32-bit seconds and the extra field:
// nanoseconds << 2 | the epoch bits that extend the signed seconds.
func (t timestamp) encode() (uint32, uint32) {
	lo := int32(t.sec)
	epoch := uint32((t.sec-int64(lo))>>32) & 3
	return uint32(lo), t.nsec<<2 | epoch
}

// inode is what the writer keeps per inode until Close.
type inode struct {
	mode                        uint16
	uid, gid                    uint32
	links                       uint32
	flags                       uint32
	size                        uint64
	atime, mtime, ctime, crtime timestamp
	exts                        []extent // data (or directory, or slow symlink) blocks
	dataBlocks, treeBlocks      uint64
	iblock                      [60]byte // extent root, fast symlink target or device number
	xattrs                      []xentry // those in the inode
	xblock                      *xblock  // the rest, nil if none
	dir                         *dirData
}

// encodeInode writes in as inode number ino into b (inodeSize bytes, zero).
func (w *Writer) encodeInode(b []byte, ino uint32, in *inode) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], in.mode)
	le.PutUint16(b[2:], uint16(in.uid))
	le.PutUint32(b[4:], uint32(in.size))
	w.putTimes(b, in)
	le.PutUint16(b[24:], uint16(in.gid))
	le.PutUint16(b[26:], uint16(in.links))
	blocks := in.dataBlocks + in.treeBlocks
	var xblk uint64
	if in.xblock != nil {
		xblk = in.xblock.blk
		blocks++
	}
	sectors := blocks * (blockSize / 512)
	le.PutUint32(b[28:], uint32(sectors))
	le.PutUint32(b[32:], in.flags)
	copy(b[40:100], in.iblock[:])
	le.PutUint32(b[104:], uint32(xblk))
	le.PutUint32(b[108:], uint32(in.size>>32))
	le.PutUint16(b[116:], uint16(sectors>>32))
	le.PutUint16(b[118:], uint16(xblk>>32))
	le.PutUint16(b[120:], uint16(in.uid>>16))
	le.PutUint16(b[122:], uint16(in.gid>>16))
	le.PutUint16(b[128:], extraIsize)
	putInodeXattrs(b, in.xattrs)
	putInodeChecksum(b, w.seed, ino, true)
}

func (w *Writer) putTimes(b []byte, in *inode) {
	le := binary.LittleEndian
	for _, f := range []struct {
		t        timestamp
		lo, xtra int
	}{{in.atime, 8, 140}, {in.ctime, 12, 132}, {in.mtime, 16, 136}, {in.crtime, 144, 148}} {
		lo, extra := f.t.encode()
		le.PutUint32(b[f.lo:], lo)
		le.PutUint32(b[f.xtra:], extra)
	}
}

// putInodeChecksum stores crc32c over the whole inode (checksum fields
// zero) seeded with the inode number and generation: the low half at
// l_i_checksum_lo, the high half in i_checksum_hi when the extra fields
// reach it.
func putInodeChecksum(b []byte, fsSeed, ino uint32, hi bool) {
	le := binary.LittleEndian
	le.PutUint16(b[124:], 0)
	le.PutUint16(b[130:], 0)
	c := crc32c(inodeSeed(fsSeed, ino), b[:inodeSize])
	le.PutUint16(b[124:], uint16(c))
	if hi {
		le.PutUint16(b[130:], uint16(c>>16))
	}
}

// encodeReserved writes an unused reserved inode as mke2fs does: zero, no
// extra fields, a valid checksum; the bad-blocks inode carries the times.
func (w *Writer) encodeReserved(b []byte, ino uint32) {
	if ino == 1 {
		t, _ := w.fsTime.encode()
		le := binary.LittleEndian
		le.PutUint32(b[8:], t)
		le.PutUint32(b[12:], t)
		le.PutUint32(b[16:], t)
	}
	putInodeChecksum(b, w.seed, ino, false)
}

// devNumber encodes a device number as the kernel does: the old 16-bit
// form in i_block[0] when major and minor fit 8 bits, else the new 32-bit
// form in i_block[1].
func devNumber(iblock *[60]byte, major, minor uint32) {
	le := binary.LittleEndian
	if major < 256 && minor < 256 {
		le.PutUint32(iblock[0:], major<<8|minor)
		return
	}
	le.PutUint32(iblock[4:], minor&0xff|major<<8|(minor&^0xff)<<12)
}
