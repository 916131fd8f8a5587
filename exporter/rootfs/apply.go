package rootfs

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"
)

// kindOf maps a tar type to an entry kind; ok is false for what a root
// filesystem does not keep (PAX global headers and the like).
func kindOf(h *tar.Header) (Kind, bool, error) {
	switch h.Typeflag {
	case tar.TypeDir, 'D': // 'D': GNU incremental dump directory
		return KindDir, true, nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		return KindReg, true, nil
	case tar.TypeSymlink:
		return KindSymlink, true, nil
	case tar.TypeLink:
		return KindHardlink, true, nil
	case tar.TypeChar:
		return KindChar, true, nil
	case tar.TypeBlock:
		return KindBlock, true, nil
	case tar.TypeFifo:
		return KindFifo, true, nil
	case tar.TypeXGlobalHeader, 'V': // 'V': GNU volume label
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("entry %s has tar type %q, which c2vm does not know", quote(h.Name), h.Typeflag)
}

// add applies one entry of layer l, in layer order, and records the node it
// made. segs is a sparse file's data map.
func (t *tree) add(l int32, ord int32, at entryAt, h *tar.Header, segs []Segment) error {
	kind, keep, err := kindOf(h)
	if err != nil || !keep {
		return err
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	if err := checkHeader(name, kind, h); err != nil {
		return err
	}
	xs, err := xattrsFromPAX(name, h.PAXRecords)
	if err != nil {
		return err
	}
	m := headerMeta(h, kind, segs, xattrInline(xs))
	if name == "" {
		if kind != KindDir {
			return fmt.Errorf("entry %s (a %s) would replace the root directory", quote(h.Name), kind)
		}
		t.root.m, t.root.layer = m, l
		t.record(l, ord, at, t.root)
		return nil
	}
	dir, base := path.Split(name)
	if t.whiteout && strings.HasPrefix(base, whiteoutPrefix) {
		return t.whiteoutEntry(l, dir, base)
	}
	parent, err := t.resolveDir(dir, l, true)
	if err != nil {
		return err
	}
	// A copy: a substring would keep the whole path alive.
	n := &node{name: strings.Clone(base), parent: parent, m: m, layer: l}
	if kind == KindHardlink {
		if err := t.linkTo(n, h); err != nil {
			return err
		}
	}
	if err := t.place(parent, n); err != nil {
		return err
	}
	if kind == KindSymlink {
		if err := t.keepLink(n, h.Linkname); err != nil {
			return err
		}
	}
	t.record(l, ord, at, n)
	return nil
}

// place puts n into parent, replacing what had its name. A directory over a
// directory only updates metadata and keeps the children.
func (t *tree) place(parent, n *node) error {
	if err := t.count(); err != nil {
		return err
	}
	old := parent.kids[n.name]
	if old != nil && old.isDir() && n.isDir() {
		n.kids = old.kids
		for _, c := range n.kids {
			c.parent = n
		}
		old.kids, old.gone = nil, true
	} else if old != nil {
		t.remove(old)
	}
	if n.isDir() && n.kids == nil {
		n.kids = map[string]*node{}
	}
	parent.kids[n.name] = n
	return nil
}

// whiteoutEntry applies a .wh. entry: it hides what lower layers had.
func (t *tree) whiteoutEntry(l int32, dir, base string) error {
	parent, err := t.resolveDir(dir, l, false)
	if err != nil || parent == nil {
		return err
	}
	switch {
	case base == opaqueMarker:
		t.pruneLower(parent, l)
	case strings.HasPrefix(base, whiteoutMeta):
		// Other aufs metadata (.wh..wh.plnk and the like): nothing to do.
	default:
		if victim := parent.child(strings.TrimPrefix(base, whiteoutPrefix)); victim != nil && victim.layer < l {
			t.remove(victim)
		}
	}
	return nil
}

// linkTo resolves a hardlink's target, which must be a non-directory the
// tree already has.
func (t *tree) linkTo(n *node, h *tar.Header) error {
	target, err := cleanName(h.Linkname)
	if err != nil {
		return err
	}
	dir, base := path.Split(target)
	var tn *node
	if base != "" {
		if d, err := t.resolveDir(dir, 0, false); err == nil && d != nil {
			tn = d.child(base)
		}
	}
	if tn == nil || tn.isDir() {
		return fmt.Errorf("hardlink %s points to %s, which is not a file in the image", quote(h.Name), quote(h.Linkname))
	}
	if tn.target != nil {
		tn = tn.target
	}
	n.target = tn
	n.m = tn.m // a hardlink is another name of the same inode
	t.hardlinks[tn] = append(t.hardlinks[tn], n)
	return nil
}

func (t *tree) record(l, ord int32, at entryAt, n *node) {
	for int(l) >= len(t.byLayer) {
		t.byLayer = append(t.byLayer, nil)
	}
	t.byLayer[l] = append(t.byLayer[l], created{ord, n, at})
}

// checkHeader validates what a header declares beyond its name.
func checkHeader(name string, kind Kind, h *tar.Header) error {
	switch kind {
	case KindReg:
		if h.Size < 0 || h.Size > MaxFileBytes {
			return fmt.Errorf("file %s declares %d bytes, beyond ext4's limit of %d", quote(name), h.Size, int64(MaxFileBytes))
		}
	case KindSymlink:
		return checkLink(name, h.Linkname)
	case KindChar, KindBlock:
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<12-1 || h.Devminor > 1<<20-1 {
			return fmt.Errorf("device %s has numbers %d:%d, beyond Linux's 12-bit major and 20-bit minor", quote(name), h.Devmajor, h.Devminor)
		}
	}
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-1 || int64(h.Gid) > 1<<32-1 {
		return fmt.Errorf("entry %s has owner %d:%d, beyond 32 bits", quote(name), h.Uid, h.Gid)
	}
	return nil
}
