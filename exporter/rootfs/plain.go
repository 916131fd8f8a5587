package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"syscall"
)

// A layer that is a plain tar file (a rootfs tar, uncompressed) is not
// parsed twice: Scan records where each entry's headers and data lie, and
// Stream reads the data at those offsets, building most entries from the
// tree. Only entries whose headers hold what the tree does not keep
// (xattrs, device numbers, a sparse map) are parsed again, at their own
// header. Parsing every header a second time was most of the difference
// between assembling from a tar and from a directory.

// fileID identifies a file's version: a plain layer must be the same file,
// unchanged, in both passes, since nothing re-checks its headers.
type fileID struct {
	dev, ino, size uint64
	mtime, ctime   int64
}

// plainFile returns rc as a file and its identity when it is a plain file.
func plainFile(rc io.Reader) (*os.File, fileID, bool) {
	f, ok := rc.(*os.File)
	if !ok {
		return nil, fileID{}, false
	}
	// Offsets count from the start of the file.
	if at, err := f.Seek(0, io.SeekCurrent); err != nil || at != 0 {
		return nil, fileID{}, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fileID{}, false
	}
	return f, fileID{dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size), mtime: fi.ModTime().UnixNano(),
		ctime: st.Ctim.Nano()}, true
}

var errChanged = errors.New("the layer changed between the two passes")

// streamPlain sends layer l's entries, made, from the plain tar file Scan
// read.
func (s *layeredSource) streamPlain(ctx context.Context, l int, made []created, sink Sink) error {
	rc, err := s.layers[l].Open()
	if err != nil {
		return s.corrupt(l, err)
	}
	defer rc.Close()
	f, id, ok := plainFile(rc)
	if !ok || id != s.plain[l] {
		return s.corrupt(l, errChanged)
	}
	changed := s.corrupt(l, errChanged)
	for _, c := range made {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.emitPlain(l, f, c, changed, sink); err != nil {
			return err
		}
	}
	if _, id, ok = plainFile(rc); !ok || id != s.plain[l] {
		return s.corrupt(l, errChanged)
	}
	return nil
}

// emitPlain sends what emit would for the entry that made c.n; a file that
// ends early reads as changed.
func (s *layeredSource) emitPlain(l int, f *os.File, c created, changed error, sink Sink) error {
	n, m := c.n, &c.n.m
	switch {
	case n.isDir() && (n.gone || !m.fromPAX):
		return nil // sent with the tree's walk
	case n.target != nil:
		return s.emit(l, n, nil, nil, nil, sink) // a hardlink: the tree knows it all
	case !n.isDir() && s.t.dataHolder(n) == nil:
		return nil // replaced later: nothing to send
	case n.isDir() || m.fromPAX || m.sparse || m.kind == KindChar || m.kind == KindBlock:
		h, segs, r, err := s.reread(l, f, n, c.at)
		if err != nil {
			return err
		}
		return s.emit(l, n, h, segs, r, sink)
	}
	holder := s.t.dataHolder(n)
	if holder == nil {
		return nil
	}
	// As headerEntry builds it from the same header, checked in Scan.
	e := &Entry{Path: holder.path(), Kind: m.kind, Mode: uint32(m.mode), UID: m.uid, GID: m.gid, Mtime: m.time()}
	var r io.Reader
	switch m.kind {
	case KindReg:
		e.Size = m.size
		r = &exactReader{r: io.NewSectionReader(f, c.at.data, m.size), left: m.size, what: changed}
	case KindSymlink:
		e.Link = s.t.linkTarget(n)
	}
	return sink.Add(e, r)
}

// reread parses n's headers again where Scan found them: the same kind
// and name, with data where it was then.
func (s *layeredSource) reread(l int, f *os.File, n *node, at entryAt) (*tar.Header, []Segment, io.Reader, error) {
	tr := newTarReader(io.NewSectionReader(f, at.hdr, math.MaxInt64))
	tr.tap.ahead = tapHeaders // headers and small data; large reads bypass it
	h, segs, err := tr.Next()
	if err == nil && (at.hdr+tr.dataOff != at.data || !sameEntry(h, n)) {
		err = errChanged
	}
	if err != nil {
		return nil, nil, nil, s.corrupt(l, noEOF(err))
	}
	return h, segs, tr, nil
}

// sameEntry says whether header h could have made node n.
func sameEntry(h *tar.Header, n *node) bool {
	kind, keep, err := kindOf(h)
	if err != nil || !keep || kind != n.m.kind {
		return false
	}
	name, err := cleanName(h.Name)
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return err == nil && name == n.name
}
