package ext4

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
)

const (
	hashHalfMD4   = 1                                                            // DX_HASH_HALF_MD4
	dxRootLimit   = (blockSize - dxRootEntriesOffset - dxTailSize) / dxEntrySize // 507 entries in the root
	dxNodeLimit   = (blockSize - dxNodeEntriesOffset - dxTailSize) / dxEntrySize // 510 in an index node
	dxInfoLength  = 8                                                            // info_length: sizeof(struct dx_root_info)
	htreeEOFHash  = 0x7fffffff << 1
	flagSignedDir = 0x1 // EXT2_FLAGS_SIGNED_HASH in s_flags: directory hashes treat names as signed chars
)

// halfMD4 is ext4's directory hash (DX_HASH_HALF_MD4) with names read as
// signed chars. mke2fs records signed chars on x86 (signed_directory_hash),
// and the kernel then reads names so on every architecture. halfMD4
// returns the major hash (low bit clear, as in the tree) and the minor
// hash.
func halfMD4(name string, seed *[4]uint32) (uint32, uint32) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if *seed != [4]uint32{} {
		buf = *seed
	}
	var in [8]uint32
	for p := name; ; p = p[32:] {
		str2hashbuf(p, &in)
		halfMD4Transform(&buf, &in)
		if len(p) <= 32 {
			break
		}
	}
	h := buf[1] &^ 1
	if h == htreeEOFHash {
		h = (0x7fffffff - 1) << 1
	}
	return h, buf[2]
}

// str2hashbuf packs up to 32 bytes of msg into in, padded with a pattern of
// the remaining length.
func str2hashbuf(msg string, in *[8]uint32) {
	pad := uint32(len(msg)) | uint32(len(msg))<<8
	pad |= pad << 16
	val := pad
	n := min(len(msg), 32)
	k := 0
	for i := 0; i < n; i++ {
		val = uint32(int32(int8(msg[i]))) + val<<8
		if i%4 == 3 {
			in[k] = val
			k++
			val = pad
		}
	}
	if k < 8 {
		in[k] = val
		k++
	}
	for ; k < 8; k++ {
		in[k] = pad
	}
}

func halfMD4Transform(buf *[4]uint32, in *[8]uint32) {
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	const k2, k3 = 013240474631, 015666365641
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	round := func(fn func(x, y, z uint32) uint32, a *uint32, b, c, d, x uint32, s int) {
		*a = bits.RotateLeft32(*a+fn(b, c, d)+x, s)
	}
	for i := 0; i < 8; i += 4 {
		round(f, &a, b, c, d, in[i], 3)
		round(f, &d, a, b, c, in[i+1], 7)
		round(f, &c, d, a, b, in[i+2], 11)
		round(f, &b, c, d, a, in[i+3], 19)
	}
	for _, i := range [2]int{1, 0} {
		round(g, &a, b, c, d, in[i]+k2, 3)
		round(g, &d, a, b, c, in[i+2]+k2, 5)
		round(g, &c, d, a, b, in[i+4]+k2, 9)
		round(g, &b, c, d, a, in[i+6]+k2, 13)
	}
	for _, i := range [2]int{3, 1} {
		round(h, &a, b, c, d, in[i]+k3, 3)
		round(h, &d, a, b, c, in[i+4]+k3, 9)
		round(h, &c, d, a, b, in[i-1]+k3, 11)
		round(h, &b, c, d, a, in[i+3]+k3, 15)
	}
	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

// hashedEnt is a directory entry with its hash, for sorting into leaves.
type hashedEnt struct {
	hash, minor uint32
	e           *dirent
}

// sortByHash hashes a directory's entries and sorts them by (hash, minor
// hash, name).
func (w *Writer) sortByHash(ents []dirent) []hashedEnt {
	hs := make([]hashedEnt, len(ents))
	for i := range ents {
		h, m := halfMD4(ents[i].name, &w.hashSeed)
		hs[i] = hashedEnt{h, m, &ents[i]}
	}
	sort.Slice(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if a.hash != b.hash {
			return a.hash < b.hash
		}
		if a.minor != b.minor {
			return a.minor < b.minor
		}
		return a.e.name < b.e.name
	})
	return hs
}

// leafStarts fills leaves in hash order and returns where each starts.
func leafStarts(hs []hashedEnt) []int {
	var starts []int
	used := leafSpace
	for i, h := range hs {
		if r := recLen(len(h.e.name)); used+r > leafSpace {
			starts = append(starts, i)
			used = r
		} else {
			used += r
		}
	}
	return starts
}

// htree lays out a hash-tree directory: block 0 the root, then index
// nodes when the leaves are more than the root can point to, then the
// leaves. Where entries with equal hashes straddle two leaves, the second
// leaf's key carries the collision bit, as the kernel sets it when it
// splits a leaf.
func (w *Writer) htree(ino uint32, d *dirData, seed uint32) ([]byte, error) {
	hs := w.sortByHash(d.ents)
	starts := leafStarts(hs)
	leaves, nodes := len(starts), 0
	if leaves > dxRootLimit {
		nodes = (leaves + dxNodeLimit - 1) / dxNodeLimit
		if nodes > dxRootLimit {
			return nil, fmt.Errorf("directory inode %d has %d entries: too many for a two-level hash tree", ino, len(hs))
		}
	}
	out := make([]byte, (1+nodes+leaves)*blockSize)
	keys := make([]uint32, leaves)
	for k, s := range starts {
		end := len(hs)
		if k+1 < leaves {
			end = starts[k+1]
		}
		keys[k] = hs[s].hash
		if s > 0 && hs[s-1].hash == hs[s].hash {
			keys[k] |= 1
		}
		blk := 1 + nodes + k
		l := newLeaf(out[blk*blockSize : (blk+1)*blockSize])
		for _, h := range hs[s:end] {
			l.add(h.e.ino, h.e.typ, h.e.name)
		}
		l.finish(seed)
	}
	root := (*dxRoot)(out)
	putDxRoot(root, ino, d.parent, nodes > 0)
	if nodes == 0 {
		putDxEntries(root[:], dxRootEntriesOffset, dxRootLimit, keys, 1, seed)
		return out, nil
	}
	nodeKeys := make([]uint32, nodes)
	for n := range nodes {
		first := n * dxNodeLimit
		nodeKeys[n] = keys[first]
		node := (*dxNode)(out[(1+n)*blockSize:])
		// A fake empty entry spans the block.
		binary.LittleEndian.PutUint16(node.fake().rec_len(), blockSize)
		putDxEntries(node[:], dxNodeEntriesOffset, dxNodeLimit, keys[first:min(first+dxNodeLimit, leaves)], 1+nodes+first, seed)
	}
	putDxEntries(root[:], dxRootEntriesOffset, dxRootLimit, nodeKeys, 1, seed)
	return out, nil
}

// putDxRoot writes the root's "." and ".." entries and dx_root_info.
func putDxRoot(r *dxRoot, ino, parent uint32, twoLevels bool) {
	putDirent(r.dot(), ino, recLen(len(".")), ftDir, ".")
	putDirent(r.dotdot(), parent, blockSize-recLen(len(".")), ftDir, "..")
	info := r.info()
	binary.LittleEndian.PutUint32(info.reserved_zero(), 0)
	*info.hash_version() = hashHalfMD4
	*info.info_length() = dxInfoLength
	if twoLevels {
		*info.indirect_levels() = 1
	}
}

// putDxEntries fills the dx_entry array at entriesOff in index block b,
// then the dx_tail with its checksum. keys[i] points at logical block
// firstBlk+i. The first entry's key is implied, and its slot holds the
// dx_countlimit.
func putDxEntries(b []byte, entriesOff, limit int, keys []uint32, firstBlk int, seed uint32) {
	le := binary.LittleEndian
	es := dxEntries(b[entriesOff:])
	cl := es.countlimit()
	le.PutUint16(cl.limit(), uint16(limit))
	le.PutUint16(cl.count(), uint16(len(keys)))
	for i, k := range keys {
		e := es.entry(i)
		if i > 0 {
			le.PutUint32(e.hash(), k)
		}
		le.PutUint32(e.block(), uint32(firstBlk+i))
	}
	// The checksum covers the used entries, then dt_reserved and a zero
	// dt_checksum.
	c := crc32c(seed, b[:entriesOff+dxEntrySize*len(keys)])
	c = crc32c(c, zeroBlock[:dxTailSize])
	t := es.tail(limit)
	le.PutUint32(t.dt_reserved(), 0)
	le.PutUint32(t.dt_checksum(), c)
}
