package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/c2vm/c2vm/internal/usererr"
	"golang.org/x/sys/unix"
)

func recOf(st *unix.Stat_t) dirRec {
	return dirRec{dev: st.Dev, ino: st.Ino, mode: st.Mode, size: st.Size, mtime: st.Mtim.Nano()}
}

// Scan walks the tree and sizes it.
func (s *dirSource) Scan(ctx context.Context) (*Inventory, error) {
	inv := newInventory()
	s.recs, s.first = nil, map[[2]uint64]string{}
	err := s.walk(ctx, func(rel string, dirfd int, name string, st *unix.Stat_t, kids []string) error {
		m, link, hard, err := s.scanOne(rel, dirfd, name, st)
		if err != nil {
			return err
		}
		inv.add(rel, &m, link, hard)
		if m.kind == KindDir {
			var names int64
			for _, k := range kids {
				names += int64(len(k))
			}
			inv.addDir(int64(len(kids)), names)
		}
		s.recs = append(s.recs, recOf(st))
		if len(s.recs) > MaxEntries {
			return fmt.Errorf("more than %d entries in %s", MaxEntries, s.root)
		}
		return nil
	}, func(rel string) {
		inv.note("skipped the socket /" + rel + ": sockets are not part of a root filesystem")
	})
	if err != nil {
		return nil, err
	}
	return inv.done()
}

// scanOne reads what sizing needs of one entry.
func (s *dirSource) scanOne(rel string, dirfd int, name string, st *unix.Stat_t) (meta, string, bool, error) {
	kind := kindOfMode(st.Mode)
	if err := CheckName(rel); err != nil {
		return meta{}, "", false, s.bad(err)
	}
	m := meta{kind: kind, mode: uint16(st.Mode & 0o7777), uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Sec, nsec: int32(st.Mtim.Nsec)}
	if kind != KindDir && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if _, ok := s.first[key]; ok {
			return m, "", true, nil
		}
		s.first[key] = rel
	}
	link := ""
	switch kind {
	case KindSymlink:
		var err error
		if link, err = readlinkat(dirfd, name); err != nil {
			return m, "", false, s.readErr(rel, err)
		}
		if err := checkLink(rel, link); err != nil {
			return m, "", false, s.bad(err)
		}
		m.linkLen = int32(len(link))
	case KindReg:
		m.size, m.data, m.segs = st.Size, st.Size, 1
		if st.Blocks*512 < st.Size {
			segs, err := s.sparse(rel, dirfd, name, st)
			if err != nil {
				return m, "", false, err
			}
			if segs != nil {
				m.data, m.segs, m.sparse = 0, int32(len(segs)), true
				for _, sg := range segs {
					m.data += sg.Len
				}
			}
		}
	}
	xs, err := s.xattrs(rel, dirfd, name)
	if err != nil {
		return m, "", false, err
	}
	m.xattrs = int32(xattrInline(xs))
	return m, link, false, nil
}

func (s *dirSource) sparse(rel string, dirfd int, name string, st *unix.Stat_t) ([]Segment, error) {
	f, err := s.openFile(rel, dirfd, name, st)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return dataSegments(int(f.Fd()), st.Size)
}

func (s *dirSource) xattrs(rel string, dirfd int, name string) ([]Xattr, error) {
	xs, err := readXattrs(procPath(dirfd, name))
	if err != nil {
		return nil, s.readErr(rel, err)
	}
	xs, err = checkXattrs(rel, xs)
	if err != nil {
		return nil, s.bad(err)
	}
	return xs, nil
}

// openFile opens a regular file beneath its directory fd without following
// a symlink or blocking on a FIFO, and checks it is the file scanned.
func (s *dirSource) openFile(rel string, dirfd int, name string, st *unix.Stat_t) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) {
			return nil, s.changed(rel)
		}
		return nil, s.readErr(rel, err)
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG || now.Ino != st.Ino || now.Dev != st.Dev {
		unix.Close(fd)
		return nil, s.changed(rel)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, MaxLinkBytes+1)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func (s *dirSource) bad(err error) error {
	return usererr.New(fmt.Sprintf("%s: %v", s, err), "remove or fix the entry in the tree")
}

// Stream walks the tree again and sends it, checking each entry against
// what Scan saw.
func (s *dirSource) Stream(ctx context.Context, sink Sink) error {
	if s.first == nil {
		return errors.New("rootfs: Stream before Scan")
	}
	i := 0
	err := s.walk(ctx, func(rel string, dirfd int, name string, st *unix.Stat_t, _ []string) error {
		if i >= len(s.recs) || s.recs[i] != recOf(st) {
			return s.changed(rel)
		}
		i++
		return s.send(sink, rel, dirfd, name, st)
	}, func(string) {})
	if err == nil && i != len(s.recs) {
		err = s.changed("")
	}
	return err
}

// send streams one entry.
func (s *dirSource) send(sink Sink, rel string, dirfd int, name string, st *unix.Stat_t) error {
	kind := kindOfMode(st.Mode)
	if kind != KindDir && st.Nlink > 1 {
		if first := s.first[[2]uint64{st.Dev, st.Ino}]; first != rel {
			return sink.Add(&Entry{Path: rel, Kind: KindHardlink, Link: first}, nil)
		}
	}
	xs, err := s.xattrs(rel, dirfd, name)
	if err != nil {
		return err
	}
	e := &Entry{Path: rel, Kind: kind, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Mtime: statTime(st), Xattrs: xs}
	switch kind {
	case KindSymlink:
		if e.Link, err = readlinkat(dirfd, name); err != nil {
			return s.readErr(rel, err)
		}
		if err := checkLink(rel, e.Link); err != nil {
			return s.bad(err)
		}
	case KindChar, KindBlock:
		e.DevMajor, e.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case KindReg:
		f, err := s.openFile(rel, dirfd, name, st)
		if err != nil {
			return err
		}
		defer f.Close()
		e.Size = st.Size
		if st.Blocks*512 < st.Size {
			if e.Data, err = dataSegments(int(f.Fd()), st.Size); err != nil {
				return s.readErr(rel, err)
			}
		}
		return sink.Add(e, &exactReader{r: segmentReader(f, e.Data, st.Size), left: e.DataBytes(), what: s.changed(rel)})
	}
	return sink.Add(e, nil)
}

// segmentReader reads a file's data segments back to back.
func segmentReader(f *os.File, segs []Segment, size int64) io.Reader {
	if segs == nil {
		return io.NewSectionReader(f, 0, size)
	}
	rs := make([]io.Reader, len(segs))
	for i, sg := range segs {
		rs[i] = io.NewSectionReader(f, sg.Off, sg.Len)
	}
	return io.MultiReader(rs...)
}
