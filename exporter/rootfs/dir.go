package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// dirSource is a root filesystem tree on the host (inside a build: the
// image's root, mounted read-only). The tree is walked through directory
// file descriptors, one component at a time with O_NOFOLLOW, so no symlink
// is ever followed and nothing outside the root is opened, whatever the
// tree does meanwhile; files are opened non-blocking (a FIFO put in place
// of a file cannot hang assembly) and checked to be what the scan saw.
type dirSource struct {
	root  string
	recs  []dirRec             // what Scan saw, in walk order
	first map[[2]uint64]string // hardlinked inodes: the first path seen
}

type dirRec struct {
	dev, ino    uint64
	mode        uint32
	size, mtime int64
}

func openDir(spec string) (Source, error) {
	// The root itself may be given through a symlink; below it, none is
	// followed.
	root, err := filepath.EvalSymlinks(spec)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("source %s: %v", spec, err), "give an existing directory")
	}
	return &dirSource{root: root}, nil
}

func (s *dirSource) String() string          { return "directory " + s.root }
func (s *dirSource) Close() error            { return nil }
func (s *dirSource) ImageConfig() *v1.Config { return nil }

func (s *dirSource) Architecture() string { return "" }

// visit is called for each entry in walk order with the directory fd that
// holds it; for the root, dirfd is the root's own fd and name is ".".
type visit func(rel string, dirfd int, name string, st *unix.Stat_t, kids []string) error

// walk visits the tree parents first, siblings sorted by name. Sockets are
// skipped (as BuildKit and docker export do) and reported through skipped.
func (s *dirSource) walk(ctx context.Context, fn visit, skipped func(rel string)) error {
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return s.readErr("", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return s.readErr("", err)
	}
	return s.walkDir(ctx, "", fd, fd, ".", &st, fn, skipped)
}

// walkDir visits directory dirfd (opened, owned and closed here) and below.
func (s *dirSource) walkDir(ctx context.Context, rel string, parentfd, dirfd int, name string, st *unix.Stat_t, fn visit, skipped func(string)) error {
	defer unix.Close(dirfd)
	names, err := readNames(dirfd)
	if err != nil {
		return s.readErr(rel, err)
	}
	var kids []string
	stats := make([]unix.Stat_t, 0, len(names))
	for _, n := range names {
		var cst unix.Stat_t
		if err := unix.Fstatat(dirfd, n, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return s.readErr(join(rel, n), err)
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFSOCK {
			skipped(join(rel, n))
			continue
		}
		kids = append(kids, n)
		stats = append(stats, cst)
	}
	if err := fn(rel, parentfd, name, st, kids); err != nil {
		return err
	}
	for i, n := range kids {
		if err := ctx.Err(); err != nil {
			return err
		}
		crel, cst := join(rel, n), &stats[i]
		if cst.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := fn(crel, dirfd, n, cst, nil); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return s.readErr(crel, err)
		}
		var now unix.Stat_t
		if err := unix.Fstat(cfd, &now); err != nil || now.Ino != cst.Ino || now.Dev != cst.Dev {
			unix.Close(cfd)
			return s.changed(crel)
		}
		if err := s.walkDir(ctx, crel, dirfd, cfd, n, cst, fn, skipped); err != nil {
			return err
		}
	}
	return nil
}

func join(rel, n string) string {
	if rel == "" {
		return n
	}
	return rel + "/" + n
}

// readNames lists a directory fd's entries, sorted.
func readNames(dirfd int) ([]string, error) {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func kindOfMode(mode uint32) Kind {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return KindDir
	case unix.S_IFREG:
		return KindReg
	case unix.S_IFLNK:
		return KindSymlink
	case unix.S_IFCHR:
		return KindChar
	case unix.S_IFBLK:
		return KindBlock
	case unix.S_IFIFO:
		return KindFifo
	}
	return 0
}

// procPath names an entry through its directory's fd, so that xattr and
// readlink calls never resolve a path the tree could change meanwhile.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// readXattrs returns an entry's extended attributes, never following a
// final symlink.
func readXattrs(p string) ([]Xattr, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			err = nil
		}
		return nil, err
	}
	if size > maxXattrBytes {
		return nil, fmt.Errorf("more than %d bytes of xattr names", maxXattrBytes)
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, err
	}
	var out []Xattr
	for _, k := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if k == "" || k == "security.selinux" {
			continue
		}
		v := make([]byte, maxXattrBytes)
		vs, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			continue // removed meanwhile, or unreadable
		}
		out = append(out, Xattr{Name: k, Value: v[:vs:vs]})
	}
	return out, nil
}

// dataSegments maps a regular file's data with SEEK_DATA and SEEK_HOLE;
// nil means dense.
func dataSegments(fd int, size int64) ([]Segment, error) {
	var segs []Segment
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, nil // no hole support: treat as dense
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, nil
		}
		hole = min(hole, size)
		segs = append(segs, Segment{data, hole - data})
		off = hole
	}
	if len(segs) == 1 && segs[0].Off == 0 && segs[0].Len == size {
		return nil, nil
	}
	if segs == nil {
		segs = []Segment{}
	}
	return segs, nil
}

func statTime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Sec, st.Mtim.Nsec) }

func (s *dirSource) readErr(rel string, err error) error {
	p := filepath.Join(s.root, rel)
	if errors.Is(err, fs.ErrPermission) {
		return usererr.New(fmt.Sprintf("cannot read %s: permission denied", p),
			"run c2vm assemble as a user who can read the whole tree (root, or inside the build), or give a tar of the tree instead")

	}
	return usererr.New(fmt.Sprintf("cannot read %s: %v", p, err), "check the source tree")
}

func (s *dirSource) changed(rel string) error {
	return usererr.New(fmt.Sprintf("%s changed while c2vm was reading the tree", filepath.Join(s.root, rel)),
		"do not modify the source directory during assembly")

}
