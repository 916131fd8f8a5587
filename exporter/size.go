package exporter

// Sizing the root filesystem from the inventory, before anything is written.
// mke2fs needs the size up front; the estimate follows how mke2fs lays out an
// ext4 with 4 KiB blocks and 256-byte inodes.

const (
	inodeSize     = 256
	blocksPerGrp  = 32768
	descSize      = 64
	maxRsvGDT     = 1024 // EXT2_ADDR_PER_BLOCK for 4 KiB blocks
	resizeHeadway = 1024 // resize_inode reserves GDT blocks for 1024x growth
)

// RootEstimate is the ext4 the inventory needs.
type RootEstimate struct {
	Inodes  int64 // what mke2fs -N gets
	Content int64 // data, directory, symlink and xattr blocks
	Min     int64 // smallest filesystem that holds it
	Auto    int64 // Min plus headroom for the guest's first boot
}

// Estimate sizes the root filesystem.
func Estimate(inv *Inventory) RootEstimate {
	// Spare inodes and blocks for what the guest creates at first boot.
	inodes := inv.Entries + inv.Entries/5 + 1024
	content := inv.DataBytes + inv.Dirs*blockSize + roundUp(inv.DirBytes, blockSize) +
		(inv.LongLinks+inv.XattrBlk)*blockSize
	fixed := content + roundUp(inodes*inodeSize, blockSize)
	fs := fixed
	for range 6 {
		blocks := fs / blockSize
		fs = fixed + (journalBlocks(blocks)+metaBlocks(blocks, inodes))*blockSize
	}
	minFS := roundUp(fs+4*mib, mib)
	return RootEstimate{
		Inodes:  inodes,
		Content: content,
		Min:     minFS,
		Auto:    roundUp(minFS+content/32+24*mib, mib),
	}
}

// journalSizes is e2fsprogs' default journal size (blocks) by filesystem
// size (blocks): the first row whose limit the filesystem is under.
var journalSizes = [][2]int64{
	{2048, 0}, {32768, 1024}, {256 << 10, 4096}, {512 << 10, 8192}, {4096 << 10, 16384},
	{8192 << 10, 32768}, {16384 << 10, 65536}, {32768 << 10, 131072},
}

func journalBlocks(blocks int64) int64 {
	for _, r := range journalSizes {
		if blocks < r[0] {
			return r[1]
		}
	}
	return 262144
}

// metaBlocks counts bitmaps, group descriptors and the GDT blocks reserved
// for growth, with their backup copies in the sparse_super groups.
func metaBlocks(blocks, inodes int64) int64 {
	groups := (blocks + blocksPerGrp - 1) / blocksPerGrp
	gdt := (groups*descSize + blockSize - 1) / blockSize
	maxBlocks := min(blocks*resizeHeadway, 1<<32-1)
	rsv := min((maxBlocks/blocksPerGrp*descSize+blockSize-1)/blockSize-gdt, maxRsvGDT)
	copies := int64(0)
	for g := int64(0); g < groups; g++ {
		if sparseGroup(g) {
			copies++
		}
	}
	// Inode tables round up per group.
	itableSlack := groups * blockSize
	return groups*2 + copies*(1+gdt+rsv) + itableSlack/blockSize
}

// sparseGroup reports whether group g holds a superblock backup: 0, 1 and
// powers of 3, 5 and 7.
func sparseGroup(g int64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []int64{3, 5, 7} {
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
