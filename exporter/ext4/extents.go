package ext4

import (
	"encoding/binary"
	"fmt"
)

// extent maps n logical blocks from lblk to physical blocks from pblk.
type extent struct {
	lblk uint32
	n    uint32 // 1..maxExtentLen
	pblk uint64
}

const (
	extentMagic     = 0xF30A                                                            // EXT4_EXT_MAGIC
	extentsInInode  = (iBlockSize - extentHeaderSize) / extentEntrySize                 // 4
	extentsPerBlock = (blockSize - extentHeaderSize - extentTailSize) / extentEntrySize // 340
	extentTailOff   = extentHeaderSize + extentsPerBlock*extentEntrySize                // 4092
)

// maxExtents bounds how many extents n logical blocks written in one piece
// take: one per maxExtentLen blocks, plus a split wherever the allocation
// steps over metadata at a group start (at most one per group).
func maxExtents(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return 2*ceilDiv(n, maxExtentLen) + 2
}

// treeBlocks is how many extent tree blocks an inode with e extents needs:
// none while they fit i_block, then leaves of 340 and index levels above
// them until the root fits i_block again.
func treeBlocks(e uint64) uint64 {
	var total uint64
	for e > extentsInInode {
		e = ceilDiv(e, extentsPerBlock)
		total += e
	}
	return total
}

func putExtentHeader(n extentNode, entries, max, depth int) {
	le := binary.LittleEndian
	h := n.header()
	le.PutUint16(h.eh_magic(), extentMagic)
	le.PutUint16(h.eh_entries(), uint16(entries))
	le.PutUint16(h.eh_max(), uint16(max))
	le.PutUint16(h.eh_depth(), uint16(depth))
	le.PutUint32(h.eh_generation(), 0)
}

func putExtent(x *ext4Extent, e extent) {
	le := binary.LittleEndian
	le.PutUint32(x.ee_block(), e.lblk)
	le.PutUint16(x.ee_len(), uint16(e.n)) // 32768 encodes as 0x8000: initialized, full length
	le.PutUint16(x.ee_start_hi(), uint16(e.pblk>>32))
	le.PutUint32(x.ee_start_lo(), uint32(e.pblk))
}

func putIndex(x *ext4ExtentIdx, lblk uint32, child uint64) {
	le := binary.LittleEndian
	le.PutUint32(x.ei_block(), lblk)
	le.PutUint32(x.ei_leaf_lo(), uint32(child))
	le.PutUint16(x.ei_leaf_hi(), uint16(child>>32))
	le.PutUint16(x.ei_unused(), 0)
}

// treeNode is one entry of a tree level: an extent at the bottom, a child
// block above.
type treeNode struct {
	lblk uint32
	blk  uint64
}

// writeExtentTree encodes an inode's extents into its i_block and, when more
// than four, into tree blocks allocated here and written out.
func (w *Writer) writeExtentTree(ino uint32, in *inode) error {
	exts := in.exts
	root := extentNode(in.iblock[:])
	if len(exts) <= extentsInInode {
		putExtentHeader(root, len(exts), extentsInInode, 0)
		for i, e := range exts {
			putExtent(root.extent(i), e)
		}
		return nil
	}
	n := treeBlocks(uint64(len(exts)))
	blks, err := w.takeBlocks(n)
	if err != nil {
		return fmt.Errorf("extent tree of inode %d: %w", ino, err)
	}
	in.treeBlocks = n
	seed := inodeSeed(w.seed, ino)
	buf := extentNode(make([]byte, blockSize))
	// Leaves first, then each index level, bottom-up.
	var level []treeNode
	for i := 0; i < len(exts); i += extentsPerBlock {
		chunk := exts[i:min(i+extentsPerBlock, len(exts))]
		clear(buf)
		putExtentHeader(buf, len(chunk), extentsPerBlock, 0)
		for j, e := range chunk {
			putExtent(buf.extent(j), e)
		}
		blk := blks[0]
		blks = blks[1:]
		w.writeTreeBlock(buf, blk, seed)
		level = append(level, treeNode{chunk[0].lblk, blk})
	}
	depth := 1
	for len(level) > extentsInInode {
		var up []treeNode
		for i := 0; i < len(level); i += extentsPerBlock {
			chunk := level[i:min(i+extentsPerBlock, len(level))]
			clear(buf)
			putExtentHeader(buf, len(chunk), extentsPerBlock, depth)
			for j, c := range chunk {
				putIndex(buf.index(j), c.lblk, c.blk)
			}
			blk := blks[0]
			blks = blks[1:]
			w.writeTreeBlock(buf, blk, seed)
			up = append(up, treeNode{chunk[0].lblk, blk})
		}
		level = up
		depth++
	}
	clear(root)
	putExtentHeader(root, len(level), extentsInInode, depth)
	for i, c := range level {
		putIndex(root.index(i), c.lblk, c.blk)
	}
	return nil
}

// writeTreeBlock stores a tree block's checksum and writes it.
func (w *Writer) writeTreeBlock(buf extentNode, blk uint64, seed uint32) {
	binary.LittleEndian.PutUint32(buf.tail().et_checksum(), crc32c(seed, buf.csummed()))
	w.out.write(blk, buf)
}

// takeBlocks allocates n blocks, not necessarily contiguous.
func (w *Writer) takeBlocks(n uint64) ([]uint64, error) {
	exts, err := w.alloc.takeExtents(0, n)
	if err != nil {
		return nil, err
	}
	blks := make([]uint64, 0, n)
	for _, e := range exts {
		for i := uint64(0); i < uint64(e.n); i++ {
			blks = append(blks, e.pblk+i)
		}
	}
	return blks, nil
}
