package ext4

import "errors"

const mib = 1 << 20

// MinSize returns the smallest filesystem size with room for the given
// inodes and contentBlocks blocks of content. The size is in bytes, a
// multiple of 1 MiB. contentBlocks is the sum of [FileBlocks],
// [DirBlocks], [SymlinkBlocks] and [XattrBlocks] over the entries.
func MinSize(inodes, contentBlocks int64) (int64, error) {
	switch {
	case inodes < 0 || contentBlocks < 0:
		return 0, errorf("negative inodes (%d) or blocks (%d)", inodes, contentBlocks)
	case inodes > maxInodes:
		return 0, errorf("%d inodes: ext4 has at most 2^32-1", inodes)
	case contentBlocks > maxFSBlocks:
		return 0, errorf("%d blocks of content: over the 16 TiB supported", contentBlocks)
	}
	const step = mib / blockSize
	roundUp := func(b uint64) uint64 { return ceilDiv(b, step) * step }
	content := uint64(contentBlocks)
	// Start below the answer (content, inode tables and the smallest
	// journal), then add each shortfall. A block more of filesystem gives
	// at most a block more of room. So the first size that fits is the
	// smallest, give or take the inode tables' rounding. A few rounds
	// settle it. The journal's size steps can add one or two.
	blocks := max(content+uint64(inodes)/inodesPerBlock+1024, 256) / step * step
	for range 64 {
		if blocks > maxFSBlocks {
			break
		}
		g, err := newGeometry(blocks, uint64(inodes))
		if errors.Is(err, errTooManyInodes) {
			blocks = roundUp(max(blocks+step, ceilDiv(uint64(inodes), blocksPerGroup)*blocksPerGroup))
			continue
		}
		if err != nil && !errors.Is(err, ErrNoSpace) {
			return 0, errorf("%w", err)
		}
		short := int64(blocks)
		if err == nil {
			short = int64(content) - g.capacity()
		}
		if short <= 0 {
			return int64(blocks) * blockSize, nil
		}
		blocks = roundUp(blocks + uint64(short))
	}
	return 0, errorf("%d inodes and %d blocks of content need more than 16 TiB", inodes, contentBlocks)
}

// FileBlocks is an upper bound of the blocks a regular file takes: its data
// blocks (holes excluded) and its extent tree blocks. data is as in
// [File.Data].
func FileBlocks(size int64, data []Segment) (int64, error) {
	runs, err := dataRuns(size, data)
	if err != nil {
		return 0, errorf("%w", err)
	}
	var blocks, exts uint64
	for _, r := range runs {
		blocks += r.n
		exts += maxExtents(r.n)
	}
	return int64(blocks + treeBlocks(exts)), nil
}

// DirBlocks is an upper bound of the blocks a directory takes with the
// given number of entries, whose names have nameBytes bytes in all. The
// entries include hardlinks and exclude "." and "..".
func DirBlocks(entries, nameBytes int64) int64 {
	// An entry takes its fixed fields and its name padded to 4 bytes: at
	// most 11 bytes more than the name.
	size := uint64(entries)*(direntNameOffset+3) + uint64(nameBytes)
	if size+dotsLen <= leafSpace {
		return 1 + int64(treeBlocks(maxExtents(1)))
	}
	// Leaves are filled in order until the next entry (at most
	// maxEntryLen bytes) does not fit. So every leaf but the last holds
	// more than leafSpace-maxEntryLen bytes.
	leaves := size/(leafSpace-maxEntryLen) + 1
	n := 1 + leaves
	if leaves > dxRootLimit {
		n += ceilDiv(leaves, dxNodeLimit)
	}
	return int64(n + treeBlocks(maxExtents(n)))
}

// SymlinkBlocks is the blocks a symlink takes: none when the target fits
// the inode (under 60 bytes).
func SymlinkBlocks(target string) int64 {
	if len(target) < iBlockSize {
		return 0
	}
	return 1
}

// XattrBlocks is the number of blocks (0 or 1) an entry's xattrs take
// beyond its inode. A block shared with other entries still counts here.
// It fails like [Writer.Create] would.
func XattrBlocks(xattrs []Xattr, isDir bool) (int64, error) {
	s, err := splitXattrs(xattrs, isDir)
	if err != nil {
		return 0, errorf("%w", err)
	}
	if len(s.inBlock) > 0 {
		return 1, nil
	}
	return 0, nil
}
