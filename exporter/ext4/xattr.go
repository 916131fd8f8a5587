package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

const (
	xattrMagic  = 0xEA020000 // EXT4_XATTR_MAGIC, h_magic of a block and of the in-inode area
	xattrEndLen = 4          // the zero word after the last entry
	// xattrInodeSpace is what the inode offers after its extra fields and
	// its ext4XattrIbodyHeader: entries, the end marker, and values.
	xattrInodeSpace = inodeSize - goodOldInodeSize - extraIsize - xattrIbodyHeaderSize
)

// xentry is one xattr as ext4 stores it: a name index standing for the
// prefix, the rest of the name, and the on-disk value.
type xentry struct {
	index uint8
	name  string
	value []byte
}

func (e *xentry) entrySize() int { return (xattrEntryNameOffset + len(e.name) + 3) &^ 3 }
func (e *xentry) valueSize() int { return (len(e.value) + 3) &^ 3 }

// xattrPrefixes maps name prefixes to their e_name_index. The ACL names are
// whole names.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
	whole  bool
}{
	{"system.posix_acl_access", 2, true},
	{"system.posix_acl_default", 3, true},
	{"user.", 1, false},
	{"trusted.", 4, false},
	{"security.", 6, false},
	{"system.", 7, false},
}

// convertXattr maps a VFS xattr to its ext4 form.
func convertXattr(x Xattr, isDir bool) (xentry, error) {
	for _, p := range xattrPrefixes {
		if p.whole {
			if x.Name != p.prefix {
				continue
			}
			if p.index == 3 && !isDir {
				return xentry{}, fmt.Errorf("a default ACL on a non-directory")
			}
			v, err := aclToDisk(x.Value)
			return xentry{index: p.index, value: v}, err
		}
		suffix, ok := strings.CutPrefix(x.Name, p.prefix)
		if !ok {
			continue
		}
		switch {
		case suffix == "":
			return xentry{}, fmt.Errorf("empty name after %q", p.prefix)
		case len(suffix) > 255:
			return xentry{}, fmt.Errorf("name longer than 255 bytes after %q", p.prefix)
		case strings.IndexByte(suffix, 0) >= 0:
			return xentry{}, fmt.Errorf("NUL in name")
		case p.index == 7 && suffix == "data":
			return xentry{}, fmt.Errorf("system.data is ext4's inline-data marker")
		}
		return xentry{index: p.index, name: suffix, value: x.Value}, nil
	}
	return xentry{}, fmt.Errorf("unknown namespace (want user., trusted., security., system.)")
}

// xattrSet is an inode's xattrs split between the inode and one block.
type xattrSet struct {
	inInode, inBlock []xentry
}

// splitXattrs converts, sorts and places xattrs: into the inode while they
// fit, the rest into one block. Errors name the attribute.
func splitXattrs(xs []Xattr, isDir bool) (xattrSet, error) {
	var s xattrSet
	if len(xs) == 0 {
		return s, nil
	}
	all := make([]xentry, 0, len(xs))
	seen := make(map[string]bool, len(xs))
	for _, x := range xs {
		if seen[x.Name] {
			return s, fmt.Errorf("xattr %q given twice", x.Name)
		}
		seen[x.Name] = true
		e, err := convertXattr(x, isDir)
		if err != nil {
			return s, fmt.Errorf("xattr %q: %v", x.Name, err)
		}
		all = append(all, e)
	}
	// The kernel looks names up in a block by (index, length, name) order.
	sort.Slice(all, func(i, j int) bool {
		a, b := &all[i], &all[j]
		if a.index != b.index {
			return a.index < b.index
		}
		if len(a.name) != len(b.name) {
			return len(a.name) < len(b.name)
		}
		return a.name < b.name
	})
	used := xattrEndLen
	blockUsed := xattrHeaderSize + xattrEndLen
	for i := range all {
		e := &all[i]
		n := e.entrySize() + e.valueSize()
		if used+n <= xattrInodeSpace {
			s.inInode = append(s.inInode, *e)
			used += n
			continue
		}
		if blockUsed+n > blockSize {
			return s, fmt.Errorf("xattr %q (%d bytes): no room left in the inode and one xattr block", xattrName(e), len(e.value))
		}
		s.inBlock = append(s.inBlock, *e)
		blockUsed += n
	}
	return s, nil
}

// xattrName rebuilds the VFS name, for messages.
func xattrName(e *xentry) string {
	for _, p := range xattrPrefixes {
		if p.index == e.index {
			if p.whole {
				return p.prefix
			}
			return p.prefix + e.name
		}
	}
	return e.name
}

// xattrHash is ext4_xattr_hash_entry over the name and the zero-padded
// value, read as little-endian words.
func xattrHash(e *xentry) uint32 {
	var h uint32
	for i := 0; i < len(e.name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(e.name[i])
	}
	for i := 0; i < len(e.value); i += 4 {
		var w [4]byte
		copy(w[:], e.value[i:])
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(w[:])
	}
	return h
}

// putXattrs writes entries from b[entriesOff] and values down from the end
// of b, value offsets counted from b[0] (the inode's first entry or the
// block's start). It returns the entries' hashes.
func putXattrs(b []byte, entriesOff int, es []xentry) []uint32 {
	le := binary.LittleEndian
	off, vend := entriesOff, len(b)
	hashes := make([]uint32, len(es))
	for i := range es {
		e := &es[i]
		x := ext4XattrEntry(b[off:])
		*x.e_name_len() = uint8(len(e.name))
		*x.e_name_index() = e.index
		if len(e.value) > 0 {
			vend -= e.valueSize()
			copy(b[vend:], e.value)
			le.PutUint16(x.e_value_offs(), uint16(vend))
		}
		le.PutUint32(x.e_value_inum(), 0)
		le.PutUint32(x.e_value_size(), uint32(len(e.value)))
		hashes[i] = xattrHash(e)
		le.PutUint32(x.e_hash(), hashes[i])
		copy(x.e_name(), e.name)
		off += e.entrySize()
	}
	return hashes
}

// putInodeXattrs fills the in-inode xattr area of an encoded inode.
func putInodeXattrs(r *ext4Inode, es []xentry) {
	if len(es) == 0 {
		return
	}
	body := r.ibody()
	binary.LittleEndian.PutUint32((*ext4XattrIbodyHeader)(body).h_magic(), xattrMagic)
	// Offsets count from the first entry, just after the header.
	putXattrs(body[xattrIbodyHeaderSize:], 0, es)
}
