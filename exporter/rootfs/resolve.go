package rootfs

import (
	"fmt"
	"strings"
)

// Following symlinks costs what their targets hold: Linux follows up to 40
// links of up to 4095 bytes, so one name can stand for some 80,000 path
// components, and an image chooses how many of its entries lie behind
// such a chain. A lookup here walks targets without their empty and "."
// components (walkForm), which change nothing however many there are, and
// walks at most maxLinkWalk other components of targets; each lookup then
// costs its own name's components and at most that many more.

// maxLinkWalk bounds the components of link targets one lookup walks: at
// about 20 ns each, no more than archive/tar takes to parse a header.
// Real images walk a few dozen at most.
const maxLinkWalk = 1024

// resolveDir walks to directory p inside the root as the kernel would in a
// chroot: symlinked components are followed within the root ("/" and ".."
// stop at it), never on the host. With make, missing or non-directory
// components become directories of layer l; without, it returns nil.
func (t *tree) resolveDir(p string, l int32, make bool) (*node, error) {
	w := pathWalk{name: p, rest: []string{p}, walked: &t.walked}
	cur := t.root
	for {
		c, ok, err := w.next()
		if err != nil || !ok {
			return cur, err
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		next := cur.child(c)
		if next != nil && next.m.kind == KindSymlink {
			target := t.walkTarget(next)
			if strings.HasPrefix(target, "/") {
				cur = t.root
			}
			if err := w.follow(target); err != nil {
				return nil, err
			}
			continue
		}
		if next == nil || !next.isDir() {
			if !make {
				return nil, nil
			}
			if next != nil {
				t.remove(next)
			}
			if next, err = t.newDir(cur, c, l); err != nil {
				return nil, err
			}
		}
		if make && next.layer < l {
			// An entry of layer l below it: the directory is part of
			// layer l too, and an opaque marker of that layer keeps it.
			next.layer = l
		}
		cur = next
	}
}

// pathWalk hands out the components of a name and of the link targets
// followed on the way, the innermost target's first.
type pathWalk struct {
	name   string
	rest   []string // what remains of the name, then of each target followed
	hops   int      // links followed
	linked int      // components taken from targets
	walked *int64   // components handed out, for tests
}

// next returns the next component; ok is false at the end of the name.
func (w *pathWalk) next() (c string, ok bool, err error) {
	for len(w.rest) > 0 {
		top := len(w.rest) - 1
		if w.rest[top] == "" {
			w.rest = w.rest[:top]
			continue
		}
		c, w.rest[top], _ = strings.Cut(w.rest[top], "/")
		*w.walked++
		if top > 0 && c != "" {
			if w.linked++; w.linked > maxLinkWalk {
				return "", false, fmt.Errorf("resolving %s walks more than %d path components through symbolic links, where c2vm stops to bound its work; shorten the targets of the links on that path", quote(w.name), maxLinkWalk)
			}
		}
		return c, true, nil
	}
	return "", false, nil
}

// follow continues the walk with a link's target, then what remained.
func (w *pathWalk) follow(target string) error {
	if w.hops++; w.hops > maxSymlinkHops {
		return fmt.Errorf("too many levels of symbolic links in %s", quote(w.name))
	}
	w.rest = append(w.rest, target)
	return nil
}

// walkTarget is a symlink node's target as lookups walk it.
func (t *tree) walkTarget(n *node) string {
	if n.target != nil {
		n = n.target
	}
	if w, ok := t.walks[n]; ok {
		return w
	}
	return t.links[n]
}

// walkForm is a target without its empty and "." components, which a
// walk skips: "/" stays first in an absolute one.
func walkForm(target string) string {
	var kept []string
	for _, c := range strings.Split(target, "/") {
		if c != "" && c != "." {
			kept = append(kept, c)
		}
	}
	w := strings.Join(kept, "/")
	if strings.HasPrefix(target, "/") {
		w = "/" + w
	}
	return w
}
