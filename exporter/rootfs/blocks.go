package rootfs

import "math"

// Upper bounds of the ext4 blocks (4 KiB) an entry takes beyond its inode.
// They are deliberately pessimistic: an estimate short by one block fails
// the whole assembly, one long by a few MiB costs nothing.

const (
	blockSize   = 4096
	fastLinkMax = 60 // shorter symlink targets live in the inode
	// A 256-byte inode keeps about 96 bytes of xattrs in place.
	inodeXattrSpace = 96
	extentMax       = 32768 // blocks per extent
	extentsInInode  = 4
	extentsPerBlock = (blockSize - 12) / 12
)

// fileBlocks bounds a regular file's data and extent-tree blocks.
func fileBlocks(data, segs int64) int64 {
	if data == 0 {
		return 0
	}
	blocks := (data+blockSize-1)/blockSize + max(segs-1, 0) // partial blocks at segment edges
	// Extents: one per segment, split at the maximum extent length and at
	// group metadata (about once per 128 MiB).
	extents := segs + 2*(blocks/extentMax+1)
	if extents > extentsInInode {
		blocks += (extents+extentsPerBlock-1)/extentsPerBlock + 1
	}
	return blocks
}

// dirBlocks bounds a directory with n children whose names total nameBytes.
func dirBlocks(n, nameBytes int64) int64 {
	// Entries are 8 bytes plus the name padded to 4; "." and ".." take 24;
	// a block loses 12 bytes to its checksum tail and up to one entry to
	// packing.
	bytes := 24 + 8*n + nameBytes + 3*n
	blocks := (bytes + blockSize - 12 - 264 - 1) / (blockSize - 12 - 264)
	if blocks > 1 {
		// htree: its root block, index blocks, and half-full leaves after
		// splits.
		blocks = 2*blocks + 1 + blocks/500
	}
	return blocks
}

func xattrNeedsBlock(bytes int64) bool { return bytes > inodeXattrSpace/2 }

// checkedSum adds without overflowing.
type checkedSum struct{ overflow bool }

func (c *checkedSum) add(to *int64, n int64) {
	if n < 0 || *to > math.MaxInt64-n {
		c.overflow = true
		return
	}
	*to += n
}
