package rootfs

import (
	"math"

	"github.com/c2vm/c2vm/exporter/ext4"
)

// Upper bounds of the ext4 blocks (4 KiB) an entry takes beyond its inode,
// from what a node keeps (counts, not maps). They are deliberately
// pessimistic: an estimate short by one block fails the whole assembly,
// one long by a few MiB costs nothing. Directories use ext4's own bound.

const (
	blockSize   = 4096
	fastLinkMax = 60 // shorter symlink targets live in the inode
	// xattrs live in the inode while they fit its 96 spare bytes.
	inodeXattrSpace = 96
	extentMax       = 32768 // blocks per extent
	extentsInInode  = 4
	extentsPerBlock = (blockSize - 12) / 12
)

// fileBlocks bounds a regular file's data and extent-tree blocks given its
// data bytes and segments (1 for a dense file).
func fileBlocks(data, segs int64, sparse bool) int64 {
	if data == 0 {
		return 0
	}
	blocks := (data + blockSize - 1) / blockSize
	if sparse {
		blocks += 2 * segs // a segment may straddle a block at each end
	}
	// Extents: one per run, split at the maximum extent length and at
	// group metadata (about once per 128 MiB).
	extents := segs + 2*(blocks/extentMax+1)
	if extents > extentsInInode {
		blocks += (extents+extentsPerBlock-1)/extentsPerBlock + 1
	}
	return blocks
}

// dirBlocks bounds a directory with n children whose names total nameBytes.
func dirBlocks(n, nameBytes int64) int64 { return ext4.DirBlocks(n, nameBytes) }

// xattrInline is what an entry's xattrs take in the inode: a 4-byte header
// and end marker, and per attribute 16 bytes plus name and value padded to
// 4 (the name counted whole, a bound of ext4's prefix-stripped suffix).
func xattrInline(xs []Xattr) int {
	if len(xs) == 0 {
		return 0
	}
	n := 8
	for _, x := range xs {
		n += 16 + (len(x.Name)+3)&^3 + (len(x.Value)+3)&^3
	}
	return n
}

// checkedSum adds without overflowing.
type checkedSum struct{ overflow bool }

func (c *checkedSum) add(to *int64, n int64) {
	if n < 0 || *to > math.MaxInt64-n {
		c.overflow = true
		return
	}
	*to += n
}
