package ext4

import (
	"fmt"
	"sort"
)

const (
	blockSize      = 4096
	blocksPerGroup = 32768
	inodeSize      = 256
	inodesPerBlock = blockSize / inodeSize
	descSize       = 64
	descsPerBlock  = blockSize / descSize
	groupsPerFlex  = 16
	maxExtentLen   = 32768 // an initialized extent covers at most 2^15 blocks
	firstIno       = 11    // first non-reserved inode: lost+found
	badBlocksIno   = 1
	rootIno        = 2
	journalIno     = 8
	lostFoundIno   = 11
	lostFoundSize  = 4 // blocks, as mke2fs makes it

	// maxFSBlocks caps the filesystem at 16 TiB, far beyond a VM root
	// disk. The cap keeps per-group state small.
	maxFSBlocks = 1<<32 - 1
	maxInodes   = 1<<32 - 1
	// maxFileBlocks is ext4's limit for a file with 4 KiB blocks: logical
	// block numbers are 32 bits, and the kernel's s_maxbytes stops one
	// block short of 16 TiB.
	maxFileBlocks = 1<<32 - 1
	maxFileSize   = maxFileBlocks * blockSize
)

// geometry is the shape of a filesystem: everything that follows from its
// size and inode count alone, in O(log groups) time.
type geometry struct {
	blocks    uint64 // filesystem blocks
	groups    uint64
	ipg       uint64 // inodes per group
	itb       uint64 // inode table blocks per group
	gdtBlocks uint64 // group descriptor table blocks
	journal   uint64 // journal blocks
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// newGeometry shapes a filesystem of the given blocks and inodes. A last
// group too small to hold its own metadata is left out, as mke2fs does.
// Otherwise every block is used.
func newGeometry(blocks, inodes uint64) (geometry, error) {
	if blocks > maxFSBlocks {
		return geometry{}, fmt.Errorf("%d blocks: filesystems over 16 TiB are not supported", blocks)
	}
	if inodes > maxInodes {
		return geometry{}, fmt.Errorf("%d inodes: ext4 has at most 2^32-1", inodes)
	}
	for range 4 {
		if blocks < 256 {
			return geometry{}, fmt.Errorf("%w: a filesystem of %d blocks is too small (minimum 1 MiB)", ErrNoSpace, blocks)
		}
		g := geometry{blocks: blocks, groups: ceilDiv(blocks, blocksPerGroup)}
		ipg, err := inodesPerGroup(inodes, g.groups)
		if err != nil {
			return geometry{}, err
		}
		g.ipg, g.itb = ipg, ipg/inodesPerBlock
		g.gdtBlocks = ceilDiv(g.groups, descsPerBlock)
		if last := g.groups - 1; last > 0 && blocks-last*blocksPerGroup <= g.tailNeed(last) {
			blocks = last * blocksPerGroup
			continue
		}
		g.journal = journalBlocks(blocks)
		if over := g.overhead(); over > blocks {
			return geometry{}, fmt.Errorf("%w: a filesystem of %d blocks is too small for its own metadata (%d blocks)", ErrNoSpace, blocks, over)
		}
		return g, nil
	}
	return geometry{}, fmt.Errorf("no layout for %d blocks", blocks)
}

// inodesPerGroup spreads inodes evenly over the groups, in whole inode
// table blocks (16 inodes, also a multiple of 8 for the bitmap).
func inodesPerGroup(inodes, groups uint64) (uint64, error) {
	ipg := ceilDiv(max(inodes, firstIno+1), groups)
	ipg = ceilDiv(ipg, inodesPerBlock) * inodesPerBlock
	if ipg > blocksPerGroup {
		return 0, fmt.Errorf("%w: %d inodes do not fit %d block groups (at most %d per group)", errTooManyInodes, inodes, groups, blocksPerGroup)
	}
	if ipg*groups > maxInodes {
		return 0, fmt.Errorf("%d inodes per group in %d groups exceed 2^32-1", ipg, groups)
	}
	return ipg, nil
}

// tailNeed is what the last group g must hold of its own: its superblock
// backup and, when it starts a flex group, its bitmaps and inode table.
func (g *geometry) tailNeed(last uint64) uint64 {
	need := g.backupBlocks(last)
	if last%groupsPerFlex == 0 {
		need += 2 + g.itb
	}
	return need
}

// backupBlocks is the superblock and descriptor copy group g holds.
func (g *geometry) backupBlocks(grp uint64) uint64 {
	if hasBackup(grp) {
		return 1 + g.gdtBlocks
	}
	return 0
}

// metaBlocks counts superblocks, descriptor tables, bitmaps and inode tables.
func (g *geometry) metaBlocks() uint64 {
	return countBackups(g.groups)*(1+g.gdtBlocks) + g.groups*(2+g.itb)
}

// overhead is every block the writer uses for itself, at most: metadata,
// the journal and its extent tree, lost+found, and 2 blocks for the root
// directory's lost+found entry (which can turn a one-block root into a
// hash tree of three blocks).
func (g *geometry) overhead() uint64 {
	return g.metaBlocks() + g.journal + treeBlocks(maxExtents(g.journal)) + lostFoundSize + 2
}

// capacity is how many blocks are left for content.
func (g *geometry) capacity() int64 { return int64(g.blocks) - int64(g.overhead()) }

// hasBackup reports whether group g holds a superblock backup under
// sparse_super: groups 0, 1 and the powers of 3, 5 and 7.
func hasBackup(g uint64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range [3]uint64{3, 5, 7} {
		p := b
		for p < g {
			p *= b
		}
		if p == g {
			return true
		}
	}
	return false
}

// countBackups counts the groups below n that hold a superblock backup.
func countBackups(n uint64) uint64 {
	c := min(n, 2)
	for _, b := range [3]uint64{3, 5, 7} {
		for p := b; p < n; p *= b {
			c++
		}
	}
	return c
}

// journalBlocks is e2fsprogs' default journal size
// (ext2fs_default_journal_size). Below 2048 blocks, where mke2fs makes
// none, it is the jbd2 minimum of 1024.
func journalBlocks(blocks uint64) uint64 {
	switch {
	case blocks < 32768:
		return 1024
	case blocks < 256<<10:
		return 4096
	case blocks < 512<<10:
		return 8192
	case blocks < 4096<<10:
		return 16384
	case blocks < 8192<<10:
		return 32768
	case blocks < 16384<<10:
		return 65536
	case blocks < 32768<<10:
		return 131072
	}
	return 262144
}

// span is a run of blocks.
type span struct{ start, n uint64 }

func (s span) end() uint64 { return s.start + s.n }

// layout places every group's metadata. Superblock backups sit at the start
// of their groups. The bitmaps and inode tables of a flex group are packed
// at the start of its first group: 16 block bitmaps, 16 inode bitmaps, then
// 16 inode tables, stepping over any backup in their way.
type layout struct {
	geometry
	blockBitmap, inodeBitmap, inodeTable []uint64 // per group
	reserved                             []span   // all metadata, sorted, merged
}

func newLayout(g geometry) (*layout, error) {
	l := &layout{
		geometry:    g,
		blockBitmap: make([]uint64, g.groups),
		inodeBitmap: make([]uint64, g.groups),
		inodeTable:  make([]uint64, g.groups),
	}
	var res []span
	for grp := uint64(0); grp < g.groups; grp++ {
		if n := g.backupBlocks(grp); n > 0 {
			res = append(res, span{grp * blocksPerGroup, n})
		}
	}
	for first := uint64(0); first < g.groups; first += groupsPerFlex {
		cur := first*blocksPerGroup + g.backupBlocks(first)
		last := min(first+groupsPerFlex, g.groups)
		for _, item := range []struct {
			dst []uint64
			n   uint64
		}{{l.blockBitmap, 1}, {l.inodeBitmap, 1}, {l.inodeTable, g.itb}} {
			for grp := first; grp < last; grp++ {
				cur = g.skipBackups(cur, item.n)
				if cur+item.n > g.blocks {
					return nil, fmt.Errorf("%w: no room for the metadata of group %d", ErrNoSpace, grp)
				}
				item.dst[grp] = cur
				res = append(res, span{cur, item.n})
				cur += item.n
			}
		}
	}
	l.reserved = mergeSpans(res)
	return l, nil
}

// skipBackups moves the start of an n-block item past any superblock backup
// it would overlap.
func (g *geometry) skipBackups(cur, n uint64) uint64 {
	for {
		moved := false
		for grp := cur / blocksPerGroup; grp*blocksPerGroup < cur+n; grp++ {
			b := span{grp * blocksPerGroup, g.backupBlocks(grp)}
			if b.n > 0 && cur < b.end() && b.start < cur+n {
				cur, moved = b.end(), true
				break
			}
		}
		if !moved {
			return cur
		}
	}
}

func mergeSpans(s []span) []span {
	sort.Slice(s, func(i, j int) bool { return s[i].start < s[j].start })
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].end() >= x.start {
			out[n-1].n = max(out[n-1].end(), x.end()) - out[n-1].start
			continue
		}
		out = append(out, x)
	}
	return out
}

// allocator hands out blocks in increasing order, stepping over metadata.
// Every block below next is in use. At and above next, only metadata is.
type allocator struct {
	next     uint64
	end      uint64
	reserved []span
	ri       int    // first reserved span not below next
	resLeft  uint64 // reserved blocks at or above next
}

func newAllocator(l *layout) *allocator {
	a := &allocator{end: l.blocks, reserved: l.reserved}
	for _, s := range l.reserved {
		a.resLeft += s.n
	}
	a.skip()
	return a
}

// skip moves next past metadata that starts at or before it.
func (a *allocator) skip() {
	for a.ri < len(a.reserved) && a.reserved[a.ri].start <= a.next {
		s := a.reserved[a.ri]
		a.resLeft -= s.n
		a.next = max(a.next, s.end())
		a.ri++
	}
}

// free is the number of blocks still available.
func (a *allocator) free() uint64 { return a.end - a.next - a.resLeft }

// take allocates up to n contiguous blocks (at most one extent's worth).
func (a *allocator) take(n uint64) (start, got uint64, err error) {
	if a.next >= a.end {
		return 0, 0, fmt.Errorf("%w: all %d blocks are in use", ErrNoSpace, a.end)
	}
	got = min(n, maxExtentLen, a.end-a.next)
	if a.ri < len(a.reserved) {
		got = min(got, a.reserved[a.ri].start-a.next)
	}
	start = a.next
	a.next += got
	a.skip()
	return start, got, nil
}

// takeExtents allocates n blocks as a list of extents starting at logical
// block lblk.
func (a *allocator) takeExtents(lblk, n uint64) ([]extent, error) {
	if a.free() < n {
		return nil, fmt.Errorf("%w: need %d blocks, %d free", ErrNoSpace, n, a.free())
	}
	var ext []extent
	for n > 0 {
		p, got, err := a.take(n)
		if err != nil {
			return nil, err
		}
		ext = append(ext, extent{lblk: uint32(lblk), n: uint32(got), pblk: p})
		lblk += got
		n -= got
	}
	return ext, nil
}
