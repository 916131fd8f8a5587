package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/c2vm/c2vm/internal/usererr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layer is one tar layer of a root filesystem. Open returns its
// uncompressed stream from the start; for image layers, reading it to the
// end and closing it checks it against its digests.
type Layer struct {
	Desc string // "layer 2 of 3 (sha256:…)"
	Open func() (io.ReadCloser, error)
}

// layeredSource is a root filesystem given as tar layers applied in order:
// an image's layers, or one rootfs tar. It is read twice, headers first,
// then contents (a plain tar file's headers only once: plain.go); nothing
// is extracted onto the host.
type layeredSource struct {
	desc      string
	layers    []Layer
	whiteouts bool
	config    *v1.Config
	arch      string // the config's architecture
	t         *tree
	sums      [][]byte   // per layer, a digest of the headers seen in Scan
	plain     []fileID   // per layer, when it is a plain tar file: which (plain.go)
	split     *splitting // for tests; nil: defaultSplitting (scansplit.go)
}

func (s *layeredSource) String() string          { return s.desc }
func (s *layeredSource) Close() error            { return nil }
func (s *layeredSource) ImageConfig() *v1.Config { return s.config }

func (s *layeredSource) Architecture() string { return s.arch }

// entryFunc gets each entry of a layer: its ordinal, where it lies, its
// header, sparse map and a reader of its data.
type entryFunc func(ord int32, at entryAt, h *tar.Header, segs []Segment, r io.Reader) error

// forEach reads layer l's entries in order and returns a digest of their
// headers; headersOnly when fn never reads the data. The layer is drained
// and closed so that digest checks run.
func (s *layeredSource) forEach(ctx context.Context, l int, headersOnly bool, fn entryFunc) ([]byte, error) {
	rc, err := s.layers[l].Open()
	if err != nil {
		return nil, s.corrupt(l, err)
	}
	defer rc.Close()
	tr := newTarReader(rc)
	if headersOnly {
		tr.headersOnly()
		if f, id, ok := plainFile(rc); ok {
			s.plain[l] = id
			sp := defaultSplitting()
			if s.split != nil {
				sp = *s.split
			}
			if sp.parts > 1 && int64(id.size) >= sp.min {
				parts := cut(f, int64(id.size), sp.parts)
				sum, _, err := s.scanSplit(ctx, l, f, int64(id.size), parts, sp.hold/int64(max(len(parts), 1)), fn)
				if err == nil {
					if err = rc.Close(); err != nil {
						return nil, s.corrupt(l, err)
					}
				}
				return sum, err
			}
		}
	}
	sum := sha256.New()
	for ord := int32(0); ; ord++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, segs, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.corrupt(l, err)
		}
		hashHeader(sum, h)
		if err := fn(ord, entryAt{tr.hdrOff, tr.dataOff}, h, segs, tr); err != nil {
			return nil, err
		}
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, s.corrupt(l, err)
	}
	if err := rc.Close(); err != nil {
		return nil, s.corrupt(l, err)
	}
	return sum.Sum(nil), nil
}

func hashHeader(sum io.Writer, h *tar.Header) {
	var b [8]byte
	sum.Write([]byte(h.Name))
	sum.Write([]byte{0, h.Typeflag})
	binary.LittleEndian.PutUint64(b[:], uint64(h.Size))
	sum.Write(b[:])
	sum.Write([]byte(h.Linkname))
	sum.Write([]byte{0})
}

func (s *layeredSource) where(l int) string {
	if len(s.layers) > 1 || s.layers[l].Desc != "" {
		return fmt.Sprintf("%s, %s", s.desc, s.layers[l].Desc)
	}
	return s.desc
}

// corrupt explains a layer that cannot be read.
func (s *layeredSource) corrupt(l int, err error) error {
	var ue *usererr.Error
	if errors.As(err, &ue) {
		return ue
	}
	var de *digestError
	if errors.As(err, &de) {
		return usererr.New(fmt.Sprintf("%s: %v", s.where(l), err),
			"fetch or save the image again (skopeo copy, docker save, buildx --output type=oci) and check where it came from")

	}
	if errors.Is(err, fs.ErrPermission) {
		return usererr.New(fmt.Sprintf("cannot read %s: %v", s.where(l), err), "make the files readable by the user running c2vm")
	}
	return usererr.New(fmt.Sprintf("cannot read %s: %v", s.where(l), err),
		"the archive is damaged or not a tar; re-create it (docker export, docker save or skopeo copy) and try again")

}

// bad explains an entry c2vm refuses.
func (s *layeredSource) bad(l int, err error) error {
	return usererr.New(fmt.Sprintf("%s: %v", s.where(l), err), "remove or fix the entry in the image")
}

// Scan applies every layer's headers to build the final tree.
func (s *layeredSource) Scan(ctx context.Context) (*Inventory, error) {
	s.t = newTree(s.whiteouts)
	s.sums = make([][]byte, len(s.layers))
	s.plain = make([]fileID, len(s.layers))
	for l := range s.layers {
		sum, err := s.forEach(ctx, l, true, func(ord int32, at entryAt, h *tar.Header, segs []Segment, _ io.Reader) error {
			if err := s.t.add(int32(l), ord, at, h, segs); err != nil {
				return s.bad(l, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.sums[l] = sum
	}
	inv := newInventory()
	err := s.t.walk(func(p string, n *node) error {
		hardlink := n.target != nil && s.t.dataHolder(n.target) != n
		inv.add(p, &n.m, s.t.linkTarget(n), hardlink)
		if n.isDir() {
			var names int64
			for name := range n.kids {
				names += int64(len(name))
			}
			inv.addDir(int64(len(n.kids)), names)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inv.done()
}

// Stream sends every directory first (their final metadata, xattrs apart),
// then every other visible entry in layer order, so parents and hardlink
// targets precede what needs them; a directory whose header has xattrs is
// sent again with them when its layer is read.
func (s *layeredSource) Stream(ctx context.Context, sink Sink) error {
	if s.t == nil {
		return errors.New("rootfs: Stream before Scan")
	}
	err := s.t.walk(func(p string, n *node) error {
		if n.isDir() {
			return sink.Add(dirEntry(p, &n.m), nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for l := range s.layers {
		var made []created
		if l < len(s.t.byLayer) {
			made = s.t.byLayer[l]
		}
		if s.plain[l] != (fileID{}) {
			if err := s.streamPlain(ctx, l, made, sink); err != nil {
				return err
			}
			continue
		}
		sum, err := s.forEach(ctx, l, false, func(ord int32, _ entryAt, h *tar.Header, segs []Segment, r io.Reader) error {
			for len(made) > 0 && made[0].ord < ord {
				made = made[1:]
			}
			if len(made) == 0 || made[0].ord != ord {
				return nil // a whiteout or a global header: it made no node
			}
			n := made[0].n
			made = made[1:]
			return s.emit(l, n, h, segs, r, sink)
		})
		if err != nil {
			return err
		}
		if !bytes.Equal(sum, s.sums[l]) {
			return s.corrupt(l, errChanged)
		}
	}
	return nil
}

// emit sends the entry that made node n, if it is part of the final tree.
func (s *layeredSource) emit(l int, n *node, h *tar.Header, segs []Segment, r io.Reader, sink Sink) error {
	switch {
	case n.isDir():
		if n.gone || !n.m.fromPAX {
			return nil
		}
		e, err := headerEntry(n.path(), h, KindDir, nil)
		if err != nil {
			return s.bad(l, err)
		}
		return sink.Add(e, nil)
	case n.target != nil:
		holder := s.t.dataHolder(n.target)
		if n.gone || holder == nil || holder == n {
			return nil
		}
		return sink.Add(&Entry{Path: n.path(), Kind: KindHardlink, Link: holder.path()}, nil)
	}
	holder := s.t.dataHolder(n)
	if holder == nil {
		return nil
	}
	e, err := headerEntry(holder.path(), h, n.m.kind, segs)
	if err != nil {
		return s.bad(l, err)
	}
	if e.Kind != KindReg {
		r = nil
	}
	return sink.Add(e, r)
}

// dirEntry is a directory's entry from its node: no xattrs.
func dirEntry(p string, m *meta) *Entry {
	return &Entry{Path: p, Kind: KindDir, Mode: uint32(m.mode), UID: m.uid, GID: m.gid, Mtime: m.time()}
}

// headerEntry builds the entry a header declares, validated.
func headerEntry(p string, h *tar.Header, kind Kind, segs []Segment) (*Entry, error) {
	if err := checkHeader(p, kind, h); err != nil {
		return nil, err
	}
	xs, err := xattrsFromPAX(p, h.PAXRecords)
	if err != nil {
		return nil, err
	}
	e := &Entry{Path: p, Kind: kind, Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid), GID: uint32(h.Gid),
		Mtime: h.ModTime, Xattrs: xs}
	switch kind {
	case KindReg:
		e.Size, e.Data = h.Size, segs
	case KindSymlink:
		e.Link = h.Linkname
	case KindChar, KindBlock:
		e.DevMajor, e.DevMinor = uint32(h.Devmajor), uint32(h.Devminor)
	}
	return e, nil
}
