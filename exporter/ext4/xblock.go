package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// Xattr blocks are written when their entry arrives, so the writer keeps
// a small record per block and never the block itself. Inodes whose blocks
// would be identical share one, as the kernel's mbcache makes them share.
// h_refcount counts the users. A block is written for one user. Close
// writes the final count of a shared block over it and patches the checksum
// to match (refcountCsum). So sharing needs no block kept in memory either.

const xattrMaxRefs = 1024 // EXT4_XATTR_REFCOUNT_MAX: a shared block's limit

// xattrTableMax bounds the sharing table to a few MiB. A full table starts
// afresh. Later inodes then share only blocks written since. That costs
// disk blocks ([XattrBlocks] counts one per inode anyway), never
// correctness. Tests lower it.
var xattrTableMax = 1 << 16

// xblock is one xattr block on disk.
type xblock struct {
	blk  uint64
	refs uint32 // inodes that use it, 0 once its last user has left
	csum uint32 // the checksum written, the one for h_refcount 1
}

// xblockKey is the SHA-256 of a block as first written (h_refcount 1,
// checksum zero): equal keys mean equal blocks, even for crafted input.
type xblockKey [sha256.Size]byte

// xblocks tracks the xattr blocks written so far.
type xblocks struct {
	table  map[xblockKey]*xblock // blocks new inodes may share
	shared []*xblock             // blocks that gained a second user
	freed  []*xblock             // blocks that lost their last user
	body   [blockSize]byte       // the block being encoded
}

func newXblocks() xblocks {
	return xblocks{table: map[xblockKey]*xblock{}}
}

// xattrBlockFor returns the block that holds es, or nil for no entries. It
// shares an identical block while that takes more users. Otherwise it
// writes a new one. A new block takes the next free block, so it lands
// among the file data being written.
func (w *Writer) xattrBlockFor(es []xentry) (*xblock, error) {
	if len(es) == 0 {
		return nil, nil
	}
	t := &w.xb
	body := t.body[:]
	encodeXattrBlock(body, es)
	key := xblockKey(sha256.Sum256(body))
	if b := t.table[key]; b != nil && b.refs < xattrMaxRefs {
		t.use(b)
		return b, nil
	}
	blks, err := w.takeBlocks(1)
	if err != nil {
		return nil, fmt.Errorf("xattr block: %w", err)
	}
	b := &xblock{blk: blks[0], refs: 1, csum: xattrBlockCsum(w.seed, blks[0], body)}
	binary.LittleEndian.PutUint32((*ext4XattrHeader)(body).h_checksum(), b.csum)
	w.out.write(b.blk, body)
	if _, ok := t.table[key]; !ok && len(t.table) >= xattrTableMax {
		clear(t.table)
	}
	t.table[key] = b
	return b, nil
}

// use adds a user to b. A block without users gets its first one back.
func (t *xblocks) use(b *xblock) {
	b.refs++
	if b.refs == 2 {
		t.shared = append(t.shared, b)
	}
}

// release takes a user from b (nil: none). A block left without users is
// freed at Close. It stays in the table until then, and identical content
// may take it back.
func (t *xblocks) release(b *xblock) {
	if b == nil {
		return
	}
	b.refs--
	if b.refs == 0 {
		t.freed = append(t.freed, b)
	}
}

// unused returns the blocks that ended without users, sorted.
func (t *xblocks) unused() []uint64 {
	var blks []uint64
	for _, b := range t.freed {
		if b.refs == 0 {
			blks = append(blks, b.blk)
		}
	}
	slices.Sort(blks)
	return slices.Compact(blks)
}

// encodeXattrBlock encodes es into b as a block for one user, checksum zero.
func encodeXattrBlock(b []byte, es []xentry) {
	le := binary.LittleEndian
	clear(b)
	h := (*ext4XattrHeader)(b)
	le.PutUint32(h.h_magic(), xattrMagic)
	le.PutUint32(h.h_refcount(), 1)
	le.PutUint32(h.h_blocks(), 1)
	var hash uint32
	for _, eh := range putXattrs(b, xattrHeaderSize, es) {
		hash = hash<<16 ^ hash>>16 ^ eh
	}
	le.PutUint32(h.h_hash(), hash)
}

// xattrBlockCsum is crc32c of the block number and the block (checksum
// field zero), seeded with the filesystem's seed.
func xattrBlockCsum(seed uint32, blk uint64, b []byte) uint32 {
	var nr [8]byte
	binary.LittleEndian.PutUint64(nr[:], blk)
	return crc32c(crc32c(seed, nr[:]), b)
}

// refcountCsum turns the checksum of a block written with h_refcount 1 into
// the one for h_refcount refs. Without its final inversion, crc32c is
// linear: for messages of one length, crc(s, a) ^ crc(s, b) = crc(0, a^b).
// The two blocks differ only in h_refcount. A crc from zero stays zero over
// the zeros before it. So the difference is the crc of 1^refs and the
// zeros after it.
func refcountCsum(csum, refs uint32) uint32 {
	d := crc32cU32(0, 1^refs)
	return csum ^ crc32c(d, zeroBlock[:blockSize-(hRefcountOffset+4)]) // the bytes after h_refcount
}

// patchSharedXattrBlocks writes the final h_refcount and checksum of every
// shared block over the ones written for one user. It runs once every block
// is on disk.
func (w *Writer) patchSharedXattrBlocks() error {
	le := binary.LittleEndian
	var refs, csum [4]byte
	for _, b := range w.xb.shared {
		if b.refs < 2 {
			continue // back to one user (as written) or none (freed)
		}
		off := w.p.Offset + int64(b.blk)*blockSize
		le.PutUint32(refs[:], b.refs)
		le.PutUint32(csum[:], refcountCsum(b.csum, b.refs))
		if _, err := w.out.f.WriteAt(refs[:], off+hRefcountOffset); err != nil {
			return fmt.Errorf("xattr block %d: %w", b.blk, err)
		}
		if _, err := w.out.f.WriteAt(csum[:], off+hChecksumOffset); err != nil {
			return fmt.Errorf("xattr block %d: %w", b.blk, err)
		}
	}
	return nil
}
