package ext4

import "encoding/binary"

const (
	sbMagic = 0xEF53
	sbSize  = 1024

	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20

	incompatFiletype = 0x2
	incompatExtents  = 0x40
	incompat64bit    = 0x80
	incompatFlexBG   = 0x200
	incompatCsumSeed = 0x2000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatMetadataCsum = 0x400

	defmXattrUser = 0x4 // default mount options mke2fs sets: user_xattr, acl
	defmACL       = 0x8
)

// sbCounts are the totals the superblock records.
type sbCounts struct {
	freeBlocks, freeInodes uint64
}

// superblock encodes the superblock for group grp: the primary (group 0)
// is marked clean; backups carry their group number and, as e2fsprogs
// writes them, a zero state.
func (w *Writer) superblock(c sbCounts, grp uint64) []byte {
	le := binary.LittleEndian
	g := &w.l.geometry
	b := make([]byte, sbSize)
	le.PutUint32(b[0x0:], uint32(g.groups*g.ipg))
	le.PutUint32(b[0x4:], uint32(g.blocks))
	le.PutUint32(b[0xC:], uint32(c.freeBlocks))
	le.PutUint32(b[0x10:], uint32(c.freeInodes))
	le.PutUint32(b[0x14:], 0) // first data block
	le.PutUint32(b[0x18:], 2) // log2(block size) - 10
	le.PutUint32(b[0x1C:], 2) // cluster size = block size
	le.PutUint32(b[0x20:], blocksPerGroup)
	le.PutUint32(b[0x24:], blocksPerGroup)
	le.PutUint32(b[0x28:], uint32(g.ipg))
	t, thi := w.sbTime()
	le.PutUint32(b[0x30:], t) // write time
	le.PutUint16(b[0x36:], 0xFFFF)
	le.PutUint16(b[0x38:], sbMagic)
	if grp == 0 {
		le.PutUint16(b[0x3A:], 1) // clean
	}
	le.PutUint16(b[0x3C:], 1) // errors: continue
	le.PutUint32(b[0x40:], t) // last check
	le.PutUint32(b[0x4C:], 1) // dynamic revision
	le.PutUint32(b[0x54:], firstIno)
	le.PutUint16(b[0x58:], inodeSize)
	le.PutUint16(b[0x5A:], uint16(grp))
	le.PutUint32(b[0x5C:], compatHasJournal|compatExtAttr|compatDirIndex)
	le.PutUint32(b[0x60:], incompatFiletype|incompatExtents|incompat64bit|incompatFlexBG|incompatCsumSeed)
	le.PutUint32(b[0x64:], roCompatSparseSuper|roCompatLargeFile|roCompatHugeFile|roCompatDirNlink|roCompatExtraIsize|roCompatMetadataCsum)
	copy(b[0x68:], w.uuid[:])
	copy(b[0x78:], w.p.Label)
	le.PutUint32(b[0xE0:], journalIno)
	copy(b[0xEC:], w.p.HashSeed[:])
	b[0xFC] = hashHalfMD4
	b[0xFD] = 1 // s_jnl_blocks holds a copy of the journal's i_block and size
	le.PutUint16(b[0xFE:], descSize)
	le.PutUint32(b[0x100:], defmXattrUser|defmACL)
	le.PutUint32(b[0x108:], t) // mkfs time
	j := w.inodes[journalIno-1]
	copy(b[0x10C:0x148], j.iblock[:])
	le.PutUint32(b[0x148:], uint32(j.size>>32))
	le.PutUint32(b[0x14C:], uint32(j.size))
	le.PutUint32(b[0x150:], uint32(g.blocks>>32))
	le.PutUint32(b[0x158:], uint32(c.freeBlocks>>32))
	le.PutUint16(b[0x15C:], extraIsize)
	le.PutUint16(b[0x15E:], extraIsize)
	le.PutUint32(b[0x160:], flagSignedDir)
	b[0x174] = 4 // log2(groups per flex)
	b[0x175] = 1 // checksum type: crc32c
	le.PutUint32(b[0x270:], w.seed)
	b[0x274] = thi // write time, high bits
	b[0x276] = thi // mkfs time
	b[0x277] = thi // last check
	le.PutUint32(b[0x3FC:], crc32c(^uint32(0), b[:0x3FC]))
	return b
}

// sbTime splits Params.Time into the superblock's 32 unsigned bits and the
// 8 high bits.
func (w *Writer) sbTime() (uint32, uint8) {
	s := max(w.p.Time.Unix(), 0)
	return uint32(s), uint8(s >> 32)
}
