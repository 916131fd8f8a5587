package vmrun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A read-only ext4 reader, just enough to find a file by its path and copy
// it out: c2vm run reads a disk's kernel and initramfs this way for the
// direct kernel boot, without a loop device, a mount or e2fsprogs. The
// filesystem is hostile input: every number read from it is checked
// against the partition before it is used, trees and links are followed a
// bounded number of steps, and what is copied out is bounded by the caller.

// Incompatible features the reader understands: anything else may change
// the layout it reads, and such a filesystem is refused.
const (
	extFiletype  = 0x2
	extMetaBG    = 0x10
	extExtents   = 0x40
	ext64Bit     = 0x80
	extMMP       = 0x100
	extFlexBG    = 0x200
	extEAInode   = 0x400
	extCsumSeed  = 0x2000
	extLargeDir  = 0x4000
	extInlineDat = 0x8000
	extEncrypt   = 0x10000
	extCasefold  = 0x20000

	roSparseSuper      = 0x1
	compatSparseSuper2 = 0x200

	extKnownIncompat = extFiletype | extMetaBG | extExtents | ext64Bit | extMMP | extFlexBG | extEAInode |
		extCsumSeed | extLargeDir | extInlineDat | extEncrypt | extCasefold
)

// Inode flags that change how an inode's data is found.
const (
	inodeEncrypted  = 0x800
	inodeExtents    = 0x80000
	inodeInlineData = 0x10000000
)

// File types of an inode's mode.
const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
)

const (
	extSuperOffset = 1024
	extSuperMagic  = 0xEF53
	extRootInode   = 2
	extentMagic    = 0xF30A
	maxExtentDepth = 5       // what the kernel allows
	maxExtents     = 1 << 14 // of one file: c2vm's files have a handful
	maxExtentNodes = 1 << 10 // tree blocks read for one file
	maxDirBytes    = 8 << 20 // a directory of 100,000 entries takes about 4 MiB
	maxLinkBytes   = 4096
	maxLinkHops    = 8
	maxComponents  = 64 // path components one lookup resolves, links' included
)

// extSuper is the superblock, read through its fields' offsets.
type extSuper []byte

func (s extSuper) inodesCount() uint32    { return binary.LittleEndian.Uint32(s[0x0:]) }
func (s extSuper) blocksCountLo() uint32  { return binary.LittleEndian.Uint32(s[0x4:]) }
func (s extSuper) firstDataBlock() uint32 { return binary.LittleEndian.Uint32(s[0x14:]) }
func (s extSuper) logBlockSize() uint32   { return binary.LittleEndian.Uint32(s[0x18:]) }
func (s extSuper) blocksPerGroup() uint32 { return binary.LittleEndian.Uint32(s[0x20:]) }
func (s extSuper) inodesPerGroup() uint32 { return binary.LittleEndian.Uint32(s[0x28:]) }
func (s extSuper) magic() uint16          { return binary.LittleEndian.Uint16(s[0x38:]) }
func (s extSuper) revLevel() uint32       { return binary.LittleEndian.Uint32(s[0x4C:]) }
func (s extSuper) inodeSize() uint16      { return binary.LittleEndian.Uint16(s[0x58:]) }
func (s extSuper) compat() uint32         { return binary.LittleEndian.Uint32(s[0x5C:]) }
func (s extSuper) incompat() uint32       { return binary.LittleEndian.Uint32(s[0x60:]) }
func (s extSuper) roCompat() uint32       { return binary.LittleEndian.Uint32(s[0x64:]) }
func (s extSuper) uuid() []byte           { return s[0x68:0x78] }
func (s extSuper) descSize() uint16       { return binary.LittleEndian.Uint16(s[0xFE:]) }
func (s extSuper) firstMetaBG() uint32    { return binary.LittleEndian.Uint32(s[0x104:]) }
func (s extSuper) blocksCountHi() uint32  { return binary.LittleEndian.Uint32(s[0x150:]) }
func (s extSuper) backupBG(i int) uint32  { return binary.LittleEndian.Uint32(s[0x24C+4*i:]) }

// extInode is an inode's on-disk bytes.
type extInode []byte

func (n extInode) mode() uint16     { return binary.LittleEndian.Uint16(n[0x0:]) }
func (n extInode) sizeLo() uint32   { return binary.LittleEndian.Uint32(n[0x4:]) }
func (n extInode) flags() uint32    { return binary.LittleEndian.Uint32(n[0x20:]) }
func (n extInode) iBlock() []byte   { return n[0x28 : 0x28+60] }
func (n extInode) sizeHigh() uint32 { return binary.LittleEndian.Uint32(n[0x6C:]) }
func (n extInode) size() int64      { return int64(n.sizeLo()) | int64(n.sizeHigh())<<32 }
func (n extInode) kind() uint16     { return n.mode() & sIFMT }

// extFS is an opened filesystem.
type extFS struct {
	r              io.ReaderAt
	blockSize      int64
	blocks         uint64
	groups         uint64
	inodes         uint32
	inodesPerGroup uint32
	inodeSize      int64
	descSize       int64
	firstDataBlock uint64
	blocksPerGroup uint64
	metaBG         bool
	firstMetaBG    uint64
	sparseSuper    bool
	sparseSuper2   bool
	backupGroups   [2]uint64
	uuid           [16]byte
}

// errNotFound is a path that does not exist in the filesystem.
var errNotFound = errors.New("no such file")

// openExtFS reads and checks the superblock of the filesystem in r, a
// partition of size bytes.
func openExtFS(r io.ReaderAt, size int64) (*extFS, error) {
	sb := make(extSuper, 1024)
	if _, err := r.ReadAt(sb, extSuperOffset); err != nil {
		return nil, fmt.Errorf("ext4 superblock: %w", err)
	}
	if sb.magic() != extSuperMagic || sb.revLevel() < 1 {
		return nil, errors.New("not an ext4 filesystem")
	}
	if f := sb.incompat(); f&^extKnownIncompat != 0 || f&extFiletype == 0 {
		return nil, fmt.Errorf("ext4 features 0x%x: not what this reader reads", f)
	}
	fs := &extFS{r: r, inodes: sb.inodesCount(), inodesPerGroup: sb.inodesPerGroup(),
		inodeSize: int64(sb.inodeSize()), descSize: 32, firstDataBlock: uint64(sb.firstDataBlock()),
		blocksPerGroup: uint64(sb.blocksPerGroup()), metaBG: sb.incompat()&extMetaBG != 0, firstMetaBG: uint64(sb.firstMetaBG()),
		sparseSuper: sb.roCompat()&roSparseSuper != 0, sparseSuper2: sb.compat()&compatSparseSuper2 != 0,
		backupGroups: [2]uint64{uint64(sb.backupBG(0)), uint64(sb.backupBG(1))}}
	copy(fs.uuid[:], sb.uuid())
	if sb.logBlockSize() > 6 {
		return nil, fmt.Errorf("ext4 block size 2^%d KiB", sb.logBlockSize())
	}
	fs.blockSize = 1024 << sb.logBlockSize()
	fs.blocks = uint64(sb.blocksCountLo())
	if sb.incompat()&ext64Bit != 0 {
		fs.blocks |= uint64(sb.blocksCountHi()) << 32
		fs.descSize = int64(sb.descSize())
	}
	bpg := fs.blocksPerGroup
	switch {
	case fs.descSize < 32 || fs.descSize > 1024 || fs.descSize&(fs.descSize-1) != 0:
		return nil, fmt.Errorf("ext4 group descriptor size %d", fs.descSize)
	case fs.inodeSize < 128 || fs.inodeSize > fs.blockSize || fs.inodeSize&(fs.inodeSize-1) != 0:
		return nil, fmt.Errorf("ext4 inode size %d", fs.inodeSize)
	case bpg == 0 || fs.inodesPerGroup == 0 || fs.blocks <= fs.firstDataBlock:
		return nil, errors.New("ext4 superblock: empty geometry")
	case fs.blocks > uint64(size/fs.blockSize):
		return nil, fmt.Errorf("ext4 filesystem of %d blocks in a partition of %d bytes", fs.blocks, size)
	}
	fs.groups = (fs.blocks - fs.firstDataBlock + bpg - 1) / bpg
	if uint64(fs.inodes) > fs.groups*uint64(fs.inodesPerGroup) {
		return nil, errors.New("ext4 superblock: more inodes than its groups hold")
	}
	return fs, nil
}

// readBlocks reads n blocks from block b, checked against the filesystem.
func (fs *extFS) readBlocks(b, n uint64) ([]byte, error) {
	if n == 0 || b >= fs.blocks || n > fs.blocks-b {
		return nil, fmt.Errorf("ext4: blocks %d+%d outside the filesystem", b, n)
	}
	buf := make([]byte, int64(n)*fs.blockSize)
	_, err := fs.r.ReadAt(buf, int64(b)*fs.blockSize)
	return buf, err
}

// descBlock is the block holding group g's descriptor, and its index
// there, as the kernel's descriptor_loc finds it: right after the
// superblock's block, or with meta_bg (beyond firstMetaBG blocks of
// descriptors) in the first group of g's meta group, after the superblock
// backup that group may hold.
func (fs *extFS) descBlock(g uint64) (block uint64, index uint64) {
	perBlock := uint64(fs.blockSize / fs.descSize)
	nr := g / perBlock
	if !fs.metaBG || nr < fs.firstMetaBG {
		return fs.firstDataBlock + 1 + nr, g % perBlock
	}
	first := nr * perBlock
	start := fs.firstDataBlock + first*fs.blocksPerGroup
	if fs.hasSuper(first) {
		start++
	}
	if fs.blockSize == 1024 && nr == 0 && fs.firstDataBlock == 0 {
		start++
	}
	return start, g % perBlock
}

// hasSuper tells whether group g keeps a superblock backup: every group
// without sparse_super, the two listed ones with sparse_super2, else 0, 1
// and the powers of 3, 5 and 7.
func (fs *extFS) hasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if fs.sparseSuper2 {
		return g == fs.backupGroups[0] || g == fs.backupGroups[1]
	}
	if !fs.sparseSuper || g == 1 {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// inode reads inode number ino.
func (fs *extFS) inode(ino uint32) (extInode, error) {
	if ino == 0 || ino > fs.inodes {
		return nil, fmt.Errorf("ext4: inode %d out of range", ino)
	}
	g, i := uint64(ino-1)/uint64(fs.inodesPerGroup), uint64(ino-1)%uint64(fs.inodesPerGroup)
	db, di := fs.descBlock(g)
	blk, err := fs.readBlocks(db, 1)
	if err != nil {
		return nil, err
	}
	d := blk[int64(di)*fs.descSize:]
	table := uint64(binary.LittleEndian.Uint32(d[0x8:]))
	if fs.descSize >= 64 {
		table |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
	}
	off := int64(i) * fs.inodeSize
	tb, err := fs.readBlocks(table+uint64(off/fs.blockSize), 1)
	if err != nil {
		return nil, err
	}
	n := extInode(tb[off%fs.blockSize : off%fs.blockSize+fs.inodeSize])
	if n.flags()&(inodeEncrypted|inodeInlineData) != 0 {
		return nil, fmt.Errorf("ext4: inode %d is encrypted or inline: not read here", ino)
	}
	return n, nil
}
