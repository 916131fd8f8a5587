package exporter

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strings"
)

// The flattened view of a layered root filesystem, built from tar headers
// only. go-containerregistry reads and verifies the layers, but its
// mutate.Extract cannot feed mke2fs: it emits the top layer first (children
// and hardlinks before their parents and targets, which `mke2fs -d` rejects)
// and gives a hardlink the wrong bytes when a later layer overwrites its
// target (go-containerregistry#2002). So the merge is ours: pass one builds
// this tree from headers, pass two streams contents in an order mke2fs takes.

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// node is one file system object. A node replaced or deleted by a later layer
// is marked gone but may live on as the data of hardlinks that point to it.
type node struct {
	name     string // clean relative path, "" for the root
	hdr      *tar.Header
	layer    int // layer its header comes from; -1 when synthesised
	children map[string]*node
	parent   *node
	gone     bool
	target   *node   // for hardlinks: the node holding the data
	links    []*node // for regular files: hardlinks pointing here
}

func (n *node) isDir() bool { return n.hdr.Typeflag == tar.TypeDir }

// tree is the merge of layers applied bottom to top.
type tree struct {
	root     *node
	byLayer  [][]*node // per layer, per entry ordinal: the node it created (nil for whiteouts)
	whiteout bool      // interpret .wh. entries (OCI layers); a plain rootfs tar keeps them literal
}

func newTree(whiteouts bool) *tree {
	root := &node{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}, layer: -1, children: map[string]*node{}}
	return &tree{root: root, whiteout: whiteouts}
}

// cleanName turns a tar entry name into a clean relative path and refuses
// names that climb out of the root. Symlink targets are never resolved on the
// host, so they need no such check.
func cleanName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	if n == "" || n == "." || n == "./" {
		return "", nil
	}
	for _, part := range strings.Split(strings.TrimSuffix(n, "/"), "/") {
		if part == ".." {
			return "", fmt.Errorf("unsafe path %q: it climbs out of the root filesystem", name)
		}
	}
	return path.Clean(n), nil
}

// lookup walks to a node by clean path.
func (t *tree) lookup(p string) *node {
	n := t.root
	if p == "" {
		return n
	}
	for _, part := range strings.Split(p, "/") {
		if n.children == nil {
			return nil
		}
		if n = n.children[part]; n == nil {
			return nil
		}
	}
	return n
}

// parentDir returns the directory that will hold p, making any missing
// parents so that a tar without directory entries still builds.
func (t *tree) parentDir(p string) *node {
	dir := path.Dir(p)
	if dir == "." {
		return t.root
	}
	parent := t.parentDir(dir)
	d := parent.children[path.Base(dir)]
	if d == nil || !d.isDir() {
		if d != nil {
			t.remove(d)
		}
		d = &node{name: dir, parent: parent, layer: -1, children: map[string]*node{},
			hdr: &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}}
		parent.children[path.Base(dir)] = d
	}
	return d
}

// remove deletes n and everything under it from the view.
func (t *tree) remove(n *node) {
	n.gone = true
	if n.parent != nil && n.parent.children[path.Base(n.name)] == n {
		delete(n.parent.children, path.Base(n.name))
	}
	for _, c := range n.children {
		t.remove(c)
	}
}

// pruneLower removes everything below dir that came from layers under l: the
// effect of an opaque directory in layer l.
func (t *tree) pruneLower(dir *node, l int) {
	for _, c := range dir.children {
		if c.layer < l {
			t.remove(c)
		} else if c.isDir() {
			t.pruneLower(c, l)
		}
	}
}

// add applies one entry of layer l, in layer order. It returns the node the
// entry created, or nil when the entry only removed things.
func (t *tree) add(l int, hdr *tar.Header) (*node, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			t.root.hdr, t.root.layer = hdr, l
		}
		return nil, nil
	}
	base := path.Base(name)
	if t.whiteout && strings.HasPrefix(base, whiteoutPrefix) {
		parent := t.root
		if dir := path.Dir(name); dir != "." {
			parent = t.lookup(dir)
		}
		if parent == nil || !parent.isDir() {
			return nil, nil
		}
		if base == opaqueMarker {
			t.pruneLower(parent, l)
		} else if victim := parent.children[strings.TrimPrefix(base, whiteoutPrefix)]; victim != nil && victim.layer < l {
			t.remove(victim)
		}
		return nil, nil
	}
	parent := t.parentDir(name)
	n := &node{name: name, hdr: hdr, layer: l, parent: parent}
	if hdr.Typeflag == tar.TypeLink {
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return nil, err
		}
		tn := t.lookup(target)
		if tn == nil || tn.hdr.Typeflag == tar.TypeDir {
			return nil, fmt.Errorf("hardlink %q points to %q, which is not a file in the image", hdr.Name, hdr.Linkname)
		}
		if tn.target != nil {
			tn = tn.target
		}
		n.target = tn
		tn.links = append(tn.links, n)
	}
	old := parent.children[base]
	if old != nil && old.isDir() && hdr.Typeflag == tar.TypeDir {
		// A directory entry over a directory updates its metadata and keeps
		// its children.
		n.children = old.children
		for _, c := range n.children {
			c.parent = n
		}
		old.children = nil
		old.gone = true
	} else if old != nil {
		t.remove(old)
	}
	if hdr.Typeflag == tar.TypeDir {
		if n.children == nil {
			n.children = map[string]*node{}
		}
	}
	parent.children[base] = n
	return n, nil
}

// record notes which node entry number ord of layer l created, for pass two.
func (t *tree) record(l int, n *node) {
	for len(t.byLayer) <= l {
		t.byLayer = append(t.byLayer, nil)
	}
	t.byLayer[l] = append(t.byLayer[l], n)
}

// walk visits every visible node, parents before children, siblings sorted.
func (t *tree) walk(fn func(*node) error) error {
	var visit func(n *node) error
	visit = func(n *node) error {
		if err := fn(n); err != nil {
			return err
		}
		names := make([]string, 0, len(n.children))
		for k := range n.children {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if err := visit(n.children[k]); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(t.root)
}

// dataHolder returns where a hardlink's bytes live in the final tree: the
// target if it is still visible, else the first visible link to it, which
// becomes a regular file carrying the data.
func (n *node) dataHolder() *node {
	if !n.gone {
		return n
	}
	for _, l := range n.links {
		if !l.gone {
			return l
		}
	}
	return nil
}
