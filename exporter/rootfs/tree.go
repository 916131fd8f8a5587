package rootfs

import (
	"archive/tar"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The flattened view of layers, built from headers only. go-containerregistry
// reads layers, but its mutate.Extract emits the top layer first (a hardlink
// before its target) and gives a hardlink the wrong bytes when a later layer
// replaces its target (go-containerregistry#2002), so the merge is ours:
// pass one builds this tree from headers, pass two streams contents.
//
// A node keeps only what sizing and ordering need; everything else (xattrs,
// link targets, device numbers) is read again from its header in pass two,
// so memory does not grow with what headers declare.

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
	maxSymlinkHops = 40 // Linux's MAXSYMLINKS
)

// meta is laid out to keep a node small: the tree holds one per entry.
type meta struct {
	size     int64 // logical size of a regular file
	data     int64 // bytes of data (sparse files hold less than size)
	mtime    int64 // Unix seconds
	uid, gid uint32
	nsec     int32
	xattrs   int32 // bytes xattrs take in the inode, for sizing
	segs     int32 // data segments of a regular file
	linkLen  int32 // length of a symlink's target
	mode     uint16
	kind     Kind
	fromPAX  bool // the header has xattrs to read again in pass two
	sparse   bool
}

func (m *meta) time() time.Time { return time.Unix(m.mtime, int64(m.nsec)) }

// node is one object of the tree. A node replaced or deleted by a later
// layer is marked gone but may live on as the data of hardlinks to it.
type node struct {
	name   string // one component; "" for the root
	parent *node
	kids   map[string]*node // directories only
	m      meta
	layer  int32 // the layer whose entry made it, or made it as a parent
	gone   bool
	target *node // hardlinks: the node holding the data
}

func (n *node) isDir() bool { return n.m.kind == KindDir }

func (n *node) path() string {
	if n.parent == nil {
		return ""
	}
	var parts []string
	for c := n; c.parent != nil; c = c.parent {
		parts = append(parts, c.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// created records which node an entry of a layer made, for pass two.
type created struct {
	ord int32
	n   *node
	at  entryAt
}

// entryAt is where an entry lies in its layer's stream: the offset of its
// first header block and of its data.
type entryAt struct{ hdr, data int64 }

// tree is the merge of layers applied bottom to top.
type tree struct {
	root      *node
	byLayer   [][]created
	whiteout  bool // interpret .wh. entries (image layers); a rootfs tar keeps them as files
	nodes     int
	links     map[*node]string // symlink targets
	linkBytes int
	hardlinks map[*node][]*node // data node → link nodes, in stream order
	walks     map[*node]string  // symlink targets as lookups walk them, where that differs (resolve.go)
	walked    int64             // path components lookups walked, for tests
}

func newTree(whiteouts bool) *tree {
	root := &node{kids: map[string]*node{}, m: meta{kind: KindDir, mode: 0o755}, layer: -1}
	return &tree{root: root, whiteout: whiteouts, links: map[*node]string{}, hardlinks: map[*node][]*node{}, walks: map[*node]string{}}
}

// cleanName turns a tar entry name into a clean relative path and refuses
// names that climb out of the root or break Linux's limits.
func cleanName(name string) (string, error) {
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			// Lexically, as archive extractors clean names; above the
			// root is refused rather than clamped.
			if len(parts) == 0 {
				return "", fmt.Errorf("unsafe path %s: it climbs out of the root filesystem", quote(name))
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	p := strings.Join(parts, "/")
	return p, CheckName(p)
}

// child returns the kid named c of directory d, or nil.
func (d *node) child(c string) *node {
	if d.kids == nil {
		return nil
	}
	return d.kids[c]
}

func (t *tree) newDir(parent *node, name string, l int32) (*node, error) {
	if err := t.count(); err != nil {
		return nil, err
	}
	d := &node{name: strings.Clone(name), parent: parent, layer: l, kids: map[string]*node{}, m: meta{kind: KindDir, mode: 0o755}}
	parent.kids[name] = d
	return d, nil
}

func (t *tree) count() error {
	if t.nodes++; t.nodes > MaxEntries {
		return fmt.Errorf("more than %d entries: c2vm keeps every entry's metadata in memory (about 400 bytes each) and stops there; set C2VM_MAX_ENTRIES to allow more", MaxEntries)
	}
	return nil
}

// remove deletes n and everything under it from the view.
func (t *tree) remove(n *node) {
	n.gone = true
	if n.parent != nil && n.parent.kids[n.name] == n {
		delete(n.parent.kids, n.name)
	}
	for _, c := range n.kids {
		t.remove(c)
	}
}

// pruneLower removes what lies below dir from layers under l: an opaque
// directory in layer l. Directories layer l made or declared stay, their
// lower content goes.
func (t *tree) pruneLower(dir *node, l int32) {
	for _, c := range dir.kids {
		if c.layer < l {
			t.remove(c)
		} else if c.isDir() {
			t.pruneLower(c, l)
		}
	}
}

// sortedKids lists a directory's children by name.
func (n *node) sortedKids() []*node {
	kids := make([]*node, 0, len(n.kids))
	for _, c := range n.kids {
		kids = append(kids, c)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	return kids
}

// walk visits every visible node, parents before children, siblings
// sorted by name, with its path.
func (t *tree) walk(fn func(p string, n *node) error) error {
	var visit func(p string, n *node) error
	visit = func(p string, n *node) error {
		if err := fn(p, n); err != nil {
			return err
		}
		for _, c := range n.sortedKids() {
			cp := c.name
			if p != "" {
				cp = p + "/" + c.name
			}
			if err := visit(cp, c); err != nil {
				return err
			}
		}
		return nil
	}
	return visit("", t.root)
}

// dataHolder returns where a node's content lives in the final tree: the
// node itself if still visible, else the first visible hardlink to it,
// which becomes a regular entry carrying the content.
func (t *tree) dataHolder(n *node) *node {
	if !n.gone {
		return n
	}
	for _, l := range t.hardlinks[n] {
		if !l.gone {
			return l
		}
	}
	return nil
}

// maxLinkBytes bounds the symlink targets kept in memory (all of them: a
// later entry may lie under any symlinked directory).
const maxLinkBytes = 32 << 20

// linkTarget is a symlink node's target; a hardlink to a symlink shares it.
func (t *tree) linkTarget(n *node) string {
	if n.target != nil {
		n = n.target
	}
	return t.links[n]
}

// keepLink keeps a symlink's target and, when it differs, the form
// lookups walk; both count towards maxLinkBytes.
func (t *tree) keepLink(n *node, target string) error {
	t.linkBytes -= len(t.links[n]) + len(t.walks[n])
	delete(t.walks, n)
	if w := walkForm(target); w != target {
		t.walks[n] = w
	}
	if t.linkBytes += len(target) + len(t.walks[n]); t.linkBytes > maxLinkBytes {
		return fmt.Errorf("symlink targets add up to more than %d MiB", maxLinkBytes>>20)
	}
	t.links[n] = target
	return nil
}

// headerMeta builds a node's metadata from a header.
func headerMeta(h *tar.Header, kind Kind, segs []Segment, xattrBytes int) meta {
	// xattrBytes is xattrInline of the entry's xattrs.
	m := meta{kind: kind, mode: uint16(h.Mode & 0o7777), uid: uint32(h.Uid), gid: uint32(h.Gid),
		mtime: h.ModTime.Unix(), nsec: int32(h.ModTime.Nanosecond()), xattrs: int32(xattrBytes),
		linkLen: int32(len(h.Linkname)), fromPAX: xattrBytes > 0}
	if kind == KindReg {
		m.size, m.data, m.segs = h.Size, h.Size, 1
		if segs != nil {
			m.data, m.segs, m.sparse = 0, int32(len(segs)), true
			for _, s := range segs {
				m.data += s.Len
			}
		}
	}
	return m
}
