package ext4

import (
	"encoding/binary"
	"math/bits"
)

// bg_flags bits.
const (
	bgInodeUninit  = 0x1 // EXT4_BG_INODE_UNINIT: no inode is in use, the inode bitmap is not written
	bgItableZeroed = 0x4 // EXT4_BG_INODE_ZEROED: the inode table reads as zeros (the target region does)
)

// groupDesc is what the writer counts per group for its descriptor.
type groupDesc struct {
	freeBlocks, freeInodes, usedDirs, itableUnused uint32
	flags                                          uint16
	blockCsum, inodeCsum                           uint32
}

// writeMetadata writes inode tables, bitmaps, descriptors, backup
// superblocks and the journal superblock, once every block is allocated.
// It returns the primary superblock, which Close writes last.
func (w *Writer) writeMetadata() *ext4SuperBlock {
	g := &w.l.geometry
	gds := make([]groupDesc, g.groups)
	w.writeInodeTables(gds)
	var c sbCounts
	w.writeBlockBitmaps(gds, &c)
	w.writeInodeBitmaps(gds, &c)
	gdt := w.encodeGDT(gds)
	for grp := uint64(0); grp < g.groups; grp++ {
		if !hasBackup(grp) {
			continue
		}
		blk := grp * blocksPerGroup
		if grp > 0 {
			w.out.write(blk, w.superblock(c, grp)[:]) // a backup fills its block's start
		}
		w.out.write(blk+1, gdt)
	}
	j := w.inodes[journalIno-1]
	w.out.write(j.exts[0].pblk, newJournalSuperblock(g.journal, w.uuid)[:])
	return w.superblock(c, 0)
}

// writeInodeTables encodes the inodes in use, group by group. The rest of
// each table stays zeros.
func (w *Writer) writeInodeTables(gds []groupDesc) {
	g := &w.l.geometry
	last := uint64(len(w.inodes))
	buf := make([]byte, g.itb*blockSize)
	for grp := range gds {
		first := uint64(grp) * g.ipg
		used := min(g.ipg, last-min(last, first))
		gds[grp].freeInodes = uint32(g.ipg - used)
		gds[grp].itableUnused = uint32(g.ipg - used)
		gds[grp].flags = bgItableZeroed
		if used == 0 && grp > 0 {
			gds[grp].flags |= bgInodeUninit
			continue
		}
		n := ceilDiv(used, inodesPerBlock) * blockSize
		b := buf[:n]
		clear(b)
		for k := uint64(0); k < used; k++ {
			ino := uint32(first + k + 1)
			ib := (*ext4Inode)(b[k*inodeSize:])
			if in := w.inodes[ino-1]; in != nil {
				w.encodeInode(ib, ino, in)
				if in.dir != nil {
					gds[grp].usedDirs++
				}
			} else {
				w.encodeReserved(ib, ino)
			}
		}
		w.out.write(w.l.inodeTable[grp], b)
	}
}

// writeBlockBitmaps marks every block below the allocator's high-water mark
// (all of them are used but xattr blocks left without users) and the
// metadata above it, plus the padding past the end of a short last group.
func (w *Writer) writeBlockBitmaps(gds []groupDesc, c *sbCounts) {
	g := &w.l.geometry
	bm := make([]byte, blockSize)
	res := w.l.reserved
	ri := 0
	unused := w.xb.unused()
	for grp := range gds {
		gs := uint64(grp) * blocksPerGroup
		ge := min(gs+blocksPerGroup, g.blocks)
		clear(bm)
		setBits(bm, 0, min(ge, max(w.alloc.next, gs))-gs)
		for ri < len(res) && res[ri].end() <= gs {
			ri++
		}
		for k := ri; k < len(res) && res[k].start < ge; k++ {
			setBits(bm, max(res[k].start, gs)-gs, min(res[k].end(), ge)-gs)
		}
		for ; len(unused) > 0 && unused[0] < ge; unused = unused[1:] {
			bm[(unused[0]-gs)/8] &^= 1 << ((unused[0] - gs) % 8)
		}
		setBits(bm, ge-gs, blocksPerGroup)
		free := uint32(blocksPerGroup - popcount(bm))
		gds[grp].freeBlocks = free
		c.freeBlocks += uint64(free)
		gds[grp].blockCsum = crc32c(w.seed, bm)
		w.out.write(w.l.blockBitmap[grp], bm)
	}
}

// writeInodeBitmaps marks the inodes in use (always the lowest numbers)
// and the padding past inodes-per-group. Groups without inodes stay
// uninitialized, unwritten and without checksum, as mke2fs leaves them.
func (w *Writer) writeInodeBitmaps(gds []groupDesc, c *sbCounts) {
	g := &w.l.geometry
	bm := make([]byte, blockSize)
	for grp := range gds {
		c.freeInodes += uint64(gds[grp].freeInodes)
		if gds[grp].flags&bgInodeUninit != 0 {
			continue
		}
		clear(bm)
		setBits(bm, 0, g.ipg-uint64(gds[grp].freeInodes))
		setBits(bm, g.ipg, blocksPerGroup)
		gds[grp].inodeCsum = crc32c(w.seed, bm[:g.ipg/8])
		w.out.write(w.l.inodeBitmap[grp], bm)
	}
}

// encodeGDT encodes the descriptors with their checksums: crc32c of the
// group number and the descriptor (bg_checksum still zero), low 16 bits.
func (w *Writer) encodeGDT(gds []groupDesc) []byte {
	le := binary.LittleEndian
	out := make([]byte, w.l.gdtBlocks*blockSize)
	for grp := range gds {
		d := &gds[grp]
		b := (*ext4GroupDesc)(out[grp*descSize:])
		bb, ib, it := w.l.blockBitmap[grp], w.l.inodeBitmap[grp], w.l.inodeTable[grp]
		le.PutUint32(b.bg_block_bitmap_lo(), uint32(bb))
		le.PutUint32(b.bg_inode_bitmap_lo(), uint32(ib))
		le.PutUint32(b.bg_inode_table_lo(), uint32(it))
		le.PutUint16(b.bg_free_blocks_count_lo(), uint16(d.freeBlocks))
		le.PutUint16(b.bg_free_inodes_count_lo(), uint16(d.freeInodes))
		le.PutUint16(b.bg_used_dirs_count_lo(), uint16(d.usedDirs))
		le.PutUint16(b.bg_flags(), d.flags)
		le.PutUint16(b.bg_block_bitmap_csum_lo(), uint16(d.blockCsum))
		le.PutUint16(b.bg_inode_bitmap_csum_lo(), uint16(d.inodeCsum))
		le.PutUint16(b.bg_itable_unused_lo(), uint16(d.itableUnused))
		le.PutUint32(b.bg_block_bitmap_hi(), uint32(bb>>32))
		le.PutUint32(b.bg_inode_bitmap_hi(), uint32(ib>>32))
		le.PutUint32(b.bg_inode_table_hi(), uint32(it>>32))
		le.PutUint16(b.bg_free_blocks_count_hi(), uint16(d.freeBlocks>>16))
		le.PutUint16(b.bg_free_inodes_count_hi(), uint16(d.freeInodes>>16))
		le.PutUint16(b.bg_used_dirs_count_hi(), uint16(d.usedDirs>>16))
		le.PutUint16(b.bg_itable_unused_hi(), uint16(d.itableUnused>>16))
		le.PutUint16(b.bg_block_bitmap_csum_hi(), uint16(d.blockCsum>>16))
		le.PutUint16(b.bg_inode_bitmap_csum_hi(), uint16(d.inodeCsum>>16))
		cs := crc32c(crc32cU32(w.seed, uint32(grp)), b[:])
		le.PutUint16(b.bg_checksum(), uint16(cs))
	}
	return out
}

// setBits sets bits [from, to) of a little-endian bitmap.
func setBits(bm []byte, from, to uint64) {
	for i := from; i < to; {
		if i%8 == 0 && to-i >= 8 {
			n := (to - i) / 8
			for k := i / 8; k < i/8+n; k++ {
				bm[k] = 0xFF
			}
			i += n * 8
			continue
		}
		bm[i/8] |= 1 << (i % 8)
		i++
	}
}

func popcount(b []byte) int {
	n := 0
	for i := 0; i+8 <= len(b); i += 8 {
		n += bits.OnesCount64(binary.LittleEndian.Uint64(b[i:]))
	}
	return n
}
