// Package chroot resolves paths inside an image's root the way the kernel
// does inside a chroot: an absolute symlink starts again at the root, ".."
// never climbs above it, and link chains are bounded. It reads the tree
// only through a function, so one walk serves the frontend (the image
// through BuildKit), the build step and the guest's init (files on disk).
package chroot

import (
	"errors"
	"path"
	"strings"
	"syscall"
)

// Limits, as Linux has them.
const (
	MaxLinks = 40   // symlinks followed for one path
	MaxPath  = 4096 // bytes in a path or a link target
)

// ErrNotExist is what Lstat returns for a missing entry.
var ErrNotExist = errors.New("no such entry")

// Lstat reports a path's symlink target without following it: isLink is
// false for any other kind of entry; a missing entry gives ErrNotExist.
type Lstat func(p string) (target string, isLink bool, err error)

// Resolve follows every symlink in the absolute path p. A missing
// component fails with ErrNotExist, unless keepMissing: then the rest is
// kept as written and joined to what was resolved. Too many links, or a
// path or target too long, fail with ELOOP or ENAMETOOLONG.
func Resolve(p string, lstat Lstat, keepMissing bool) (string, error) {
	if !strings.HasPrefix(p, "/") || len(p) > MaxPath {
		return "", syscall.ENAMETOOLONG
	}
	done, rest, links := "/", strings.Split(p, "/"), 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		target, isLink, err := lstat(next)
		switch {
		case errors.Is(err, ErrNotExist) && keepMissing:
			return path.Join(append([]string{next}, rest...)...), nil
		case err != nil:
			return "", err
		case !isLink:
			done = next
			continue
		}
		if links++; links > MaxLinks {
			return "", syscall.ELOOP
		}
		if len(target) > MaxPath {
			return "", syscall.ENAMETOOLONG
		}
		if strings.HasPrefix(target, "/") {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil
}
