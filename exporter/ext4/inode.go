package ext4

import (
	"encoding/binary"
	"time"
)

const (
	// extraIsize is i_extra_isize: the extra fields after the first
	// goodOldInodeSize bytes, up to i_crtime_extra.
	extraIsize = 32

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

// minTime and maxTime bound the seconds of the times an inode records. 32
// signed bits of seconds plus two epoch bits hold 1901-12-13 to 2446-05-10.
// But e2fsck (until 2242) takes times from 2310-04-04 to 2378 for an old
// kernel's encoding of pre-1970 times, and "fixes" them. So later times are
// clamped below 2310-04-04.
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
	iblock                      iBlock   // extent root, fast symlink target or device number
	xattrs                      []xentry // those in the inode
	xblock                      *xblock  // the rest, nil if none
	dir                         *dirData
}

// encodeInode writes in as inode number ino into r, which is zeros.
func (w *Writer) encodeInode(r *ext4Inode, ino uint32, in *inode) {
	le := binary.LittleEndian
	le.PutUint16(r.i_mode(), in.mode)
	le.PutUint16(r.i_uid(), uint16(in.uid))
	le.PutUint32(r.i_size_lo(), uint32(in.size))
	putTime(r.i_atime(), r.i_atime_extra(), in.atime)
	putTime(r.i_ctime(), r.i_ctime_extra(), in.ctime)
	putTime(r.i_mtime(), r.i_mtime_extra(), in.mtime)
	putTime(r.i_crtime(), r.i_crtime_extra(), in.crtime)
	le.PutUint16(r.i_gid(), uint16(in.gid))
	le.PutUint16(r.i_links_count(), uint16(in.links))
	blocks := in.dataBlocks + in.treeBlocks
	var xblk uint64
	if in.xblock != nil {
		xblk = in.xblock.blk
		blocks++
	}
	sectors := blocks * (blockSize / 512)
	le.PutUint32(r.i_blocks_lo(), uint32(sectors))
	le.PutUint32(r.i_flags(), in.flags)
	*r.i_block() = in.iblock
	le.PutUint32(r.i_file_acl_lo(), uint32(xblk))
	le.PutUint32(r.i_size_high(), uint32(in.size>>32))
	le.PutUint16(r.l_i_blocks_high(), uint16(sectors>>32))
	le.PutUint16(r.l_i_file_acl_high(), uint16(xblk>>32))
	le.PutUint16(r.l_i_uid_high(), uint16(in.uid>>16))
	le.PutUint16(r.l_i_gid_high(), uint16(in.gid>>16))
	le.PutUint16(r.i_extra_isize(), extraIsize)
	putInodeXattrs(r, in.xattrs)
	putInodeChecksum(r, w.seed, ino, true)
}

// putTime stores a time in an inode's seconds field and its extra field.
func putTime(sec, extra []byte, t timestamp) {
	lo, ex := t.encode()
	binary.LittleEndian.PutUint32(sec, lo)
	binary.LittleEndian.PutUint32(extra, ex)
}

// putInodeChecksum stores crc32c over the whole inode (checksum fields
// zero) seeded with the inode number and generation. The low half goes to
// l_i_checksum_lo. The high half goes to i_checksum_hi when hi is set: the
// inode has extra fields that reach it.
func putInodeChecksum(r *ext4Inode, fsSeed, ino uint32, hi bool) {
	le := binary.LittleEndian
	le.PutUint16(r.l_i_checksum_lo(), 0)
	le.PutUint16(r.i_checksum_hi(), 0)
	c := crc32c(inodeSeed(fsSeed, ino), r[:])
	le.PutUint16(r.l_i_checksum_lo(), uint16(c))
	if hi {
		le.PutUint16(r.i_checksum_hi(), uint16(c>>16))
	}
}

// encodeReserved writes an unused reserved inode as mke2fs does: zero, no
// extra fields, a valid checksum. The bad-blocks inode carries the times.
func (w *Writer) encodeReserved(r *ext4Inode, ino uint32) {
	if ino == badBlocksIno {
		t, _ := w.fsTime.encode()
		le := binary.LittleEndian
		le.PutUint32(r.i_atime(), t)
		le.PutUint32(r.i_ctime(), t)
		le.PutUint32(r.i_mtime(), t)
	}
	putInodeChecksum(r, w.seed, ino, false)
}

// devNumber encodes a device number as the kernel does. The old 16-bit
// form goes to i_block[0] when major and minor fit 8 bits. Otherwise the
// new 32-bit form goes to i_block[1].
func devNumber(ib *iBlock, major, minor uint32) {
	le := binary.LittleEndian
	if major < 256 && minor < 256 {
		le.PutUint32(ib.word(0), major<<8|minor)
		return
	}
	le.PutUint32(ib.word(1), minor&0xff|major<<8|(minor&^0xff)<<12)
}
