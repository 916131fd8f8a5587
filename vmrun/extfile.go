package vmrun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// extent is a run of a file's blocks.
type extent struct {
	logical uint64 // the file's first block it holds
	length  uint64
	start   uint64 // its first block in the filesystem
	zero    bool   // unwritten: reads as zeros
}

// extentNode is a node of an extent tree: a 12-byte header, then 12-byte
// entries (leaves in a node of depth 0, indexes above).
type extentNode []byte

func (h extentNode) magic() uint16        { return binary.LittleEndian.Uint16(h[0:]) }
func (h extentNode) entries() int         { return int(binary.LittleEndian.Uint16(h[2:])) }
func (h extentNode) max() int             { return int(binary.LittleEndian.Uint16(h[4:])) }
func (h extentNode) depth() int           { return int(binary.LittleEndian.Uint16(h[6:])) }
func (h extentNode) entry(i int) extEntry { return extEntry(h[12+12*i : 24+12*i]) }

// extEntry is a leaf (block, len, start_hi, start_lo) or an index (block,
// leaf_lo, leaf_hi).
type extEntry []byte

func (e extEntry) block() uint32   { return binary.LittleEndian.Uint32(e[0:]) }
func (e extEntry) leafLen() uint16 { return binary.LittleEndian.Uint16(e[4:]) }
func (e extEntry) leafStart() uint64 {
	return uint64(binary.LittleEndian.Uint16(e[6:]))<<32 | uint64(binary.LittleEndian.Uint32(e[8:]))
}
func (e extEntry) child() uint64 {
	return uint64(binary.LittleEndian.Uint32(e[4:])) | uint64(binary.LittleEndian.Uint16(e[8:]))<<32
}

// initMaxLen is the longest initialized extent; a longer length marks an
// unwritten one, of length-initMaxLen blocks.
const initMaxLen = 32768

// extents returns a file's extents in logical order, refusing overlaps.
func (fs *extFS) extents(n extInode) ([]extent, error) {
	if n.flags()&inodeExtents == 0 {
		return nil, errors.New("ext4: a file mapped by block lists, not extents: not read here")
	}
	var out []extent
	nodes := 0
	if err := fs.walkExtents(extentNode(n.iBlock()), -1, &out, &nodes); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].logical < out[j].logical })
	for i := 1; i < len(out); i++ {
		if out[i].logical < out[i-1].logical+out[i-1].length {
			return nil, errors.New("ext4: overlapping extents")
		}
	}
	return out, nil
}

// walkExtents collects the leaves under node, whose depth must be want
// (any at the root, -1). nodes counts the tree blocks read, which bounds
// a tree whose index entries all point at the same blocks.
func (fs *extFS) walkExtents(node extentNode, want int, out *[]extent, nodes *int) error {
	if len(node) < 12 || node.magic() != extentMagic || node.entries() > node.max() || node.max() > (len(node)-12)/12 {
		return errors.New("ext4: bad extent tree node")
	}
	d := node.depth()
	if d > maxExtentDepth || want >= 0 && d != want {
		return fmt.Errorf("ext4: extent tree node of depth %d", d)
	}
	for i := range node.entries() {
		e := node.entry(i)
		if d == 0 {
			x := extent{logical: uint64(e.block()), length: uint64(e.leafLen()), start: e.leafStart()}
			if x.length > initMaxLen {
				x.length, x.zero = x.length-initMaxLen, true
			}
			if x.length == 0 || !x.zero && (x.start >= fs.blocks || x.length > fs.blocks-x.start) {
				return errors.New("ext4: extent outside the filesystem")
			}
			if *out = append(*out, x); len(*out) > maxExtents {
				return errors.New("ext4: too many extents")
			}
			continue
		}
		if *nodes++; *nodes > maxExtentNodes {
			return errors.New("ext4: too many extent tree blocks")
		}
		blk, err := fs.readBlocks(e.child(), 1)
		if err != nil {
			return err
		}
		if err := fs.walkExtents(extentNode(blk), d-1, out, nodes); err != nil {
			return err
		}
	}
	return nil
}

// errTooLarge is a file larger than the caller takes.
var errTooLarge = errors.New("file too large")

// copyChunk is how many blocks are read at once.
const copyChunk = 256

// readFile writes the contents of n to w: holes and unwritten extents as
// zeros, nothing past its size, and nothing at all when it is larger than
// max.
func (fs *extFS) readFile(n extInode, w io.Writer, max int64) error {
	size := n.size()
	if size < 0 || size > max {
		return fmt.Errorf("%w: %d bytes, more than %d", errTooLarge, size, max)
	}
	exts, err := fs.extents(n)
	if err != nil {
		return err
	}
	left := size
	put := func(b []byte) error {
		b = b[:min(int64(len(b)), left)]
		left -= int64(len(b))
		_, err := w.Write(b)
		return err
	}
	zeros := make([]byte, copyChunk*fs.blockSize)
	next := uint64(0) // the next block of the file to write
	for _, e := range append(exts, extent{logical: ^uint64(0) / uint64(fs.blockSize)}) {
		for ; next < e.logical && left > 0; next += copyChunk {
			if err := put(zeros[:min(e.logical-next, copyChunk)*uint64(fs.blockSize)]); err != nil {
				return err
			}
		}
		next = e.logical
		for done := uint64(0); done < e.length && left > 0; done += copyChunk {
			k := min(e.length-done, copyChunk)
			b := zeros[:k*uint64(fs.blockSize)]
			if !e.zero {
				if b, err = fs.readBlocks(e.start+done, k); err != nil {
					return err
				}
			}
			if err := put(b); err != nil {
				return err
			}
		}
		next += e.length
		if left == 0 {
			return nil
		}
	}
	return nil
}

// dirLookup finds name in directory dir and returns its inode number.
func (fs *extFS) dirLookup(dir extInode, name string) (uint32, error) {
	if dir.kind() != sIFDIR {
		return 0, errors.New("ext4: not a directory")
	}
	var buf bytes.Buffer
	if err := fs.readFile(dir, &buf, maxDirBytes); err != nil {
		return 0, err
	}
	data, bs := buf.Bytes(), int(fs.blockSize)
	// Every block is a list of entries (inode, rec_len, name_len, type,
	// name); a hash tree's index blocks look like one empty entry, so a
	// linear scan finds names in any directory.
	for off := 0; off+bs <= len(data); off += bs {
		blk := data[off : off+bs]
		for p := 0; p+8 <= bs; {
			ino := binary.LittleEndian.Uint32(blk[p:])
			rec := int(binary.LittleEndian.Uint16(blk[p+4:]))
			if bs == 65536 && (rec == 0 || rec == 65535) {
				rec = 65536
			}
			nl := int(blk[p+6])
			if rec < 8 || rec%4 != 0 || p+rec > bs || 8+nl > rec {
				return 0, errors.New("ext4: bad directory entry")
			}
			if ino != 0 && string(blk[p+8:p+8+nl]) == name {
				return ino, nil
			}
			p += rec
		}
	}
	return 0, errNotFound
}

// readLink returns a symlink's target: in the inode itself when short,
// else in its data.
func (fs *extFS) readLink(n extInode) (string, error) {
	size := n.size()
	if size <= 0 || size > maxLinkBytes {
		return "", fmt.Errorf("ext4: symlink of %d bytes", size)
	}
	var t []byte
	if size < 60 && n.flags()&inodeExtents == 0 {
		t = n.iBlock()[:size]
	} else {
		var buf bytes.Buffer
		if err := fs.readFile(n, &buf, maxLinkBytes); err != nil {
			return "", err
		}
		t = buf.Bytes()
	}
	if bytes.IndexByte(t, 0) >= 0 {
		return "", errors.New("ext4: symlink target with a NUL byte")
	}
	return string(t), nil
}

// lookup finds the inode at path p, from the filesystem's root. With
// follow, symlinks are followed as the kernel would inside this
// filesystem (an absolute target starts again at its root, ".." stops at
// the root), at most maxLinkHops of them; without, a symlink anywhere on
// the way is an error. Nothing outside the filesystem is ever reached,
// and the work is bounded: maxComponents components, each a directory of
// at most maxDirBytes.
func (fs *extFS) lookup(p string, follow bool) (extInode, error) {
	parts := strings.Split(p, "/")
	dirs := []uint32{extRootInode} // from the root down to the current directory
	hops, steps := 0, 0
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		if steps++; steps > maxComponents {
			return nil, fmt.Errorf("%s: more than %d path components", p, maxComponents)
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if len(dirs) > 1 {
				dirs = dirs[:len(dirs)-1]
			}
			continue
		}
		dir, err := fs.inode(dirs[len(dirs)-1])
		if err != nil {
			return nil, err
		}
		ino, err := fs.dirLookup(dir, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		n, err := fs.inode(ino)
		if err != nil {
			return nil, err
		}
		switch n.kind() {
		case sIFDIR:
			dirs = append(dirs, ino)
			continue
		case sIFLNK:
			if !follow {
				return nil, fmt.Errorf("%s: a symlink is on the way", p)
			}
			if hops++; hops > maxLinkHops {
				return nil, fmt.Errorf("%s: more than %d symlinks", p, maxLinkHops)
			}
			t, err := fs.readLink(n)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(t, "/") {
				dirs = dirs[:1]
			}
			parts = append(strings.Split(t, "/"), parts...)
			continue
		}
		if !allEmpty(parts) {
			return nil, fmt.Errorf("%s: not a directory on the way", p)
		}
		return n, nil
	}
	return fs.inode(dirs[len(dirs)-1])
}

// allEmpty tells whether path components are all "" or ".".
func allEmpty(parts []string) bool {
	for _, c := range parts {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}
