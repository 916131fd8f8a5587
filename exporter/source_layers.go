package exporter

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// layerOpener opens one layer as an uncompressed tar stream, from the start.
type layerOpener func() (io.ReadCloser, error)

// layeredSource is a root filesystem given as tar layers applied in order:
// an OCI image's layers, or a single rootfs tar. It is read twice: headers
// first, then contents; nothing is extracted onto the host.
type layeredSource struct {
	desc      string
	layers    []layerOpener
	whiteouts bool
	t         *tree
}

func (s *layeredSource) String() string { return s.desc }

// forEach reads layer l's entries in order; fn gets each header and a reader
// of its content. The whole layer is drained so that digest checks at its end
// run.
func (s *layeredSource) forEach(ctx context.Context, l int, fn func(ord int, h *tar.Header, r io.Reader) error) error {
	rc, err := s.layers[l]()
	if err != nil {
		return s.corrupt(l, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for ord := 0; ; ord++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.corrupt(l, err)
		}
		if err := fn(ord, h, tr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return s.corrupt(l, err)
	}
	if err := rc.Close(); err != nil {
		return s.corrupt(l, err)
	}
	return nil
}

func (s *layeredSource) corrupt(l int, err error) error {
	where := s.desc
	if len(s.layers) > 1 {
		where = fmt.Sprintf("%s, layer %d of %d", s.desc, l+1, len(s.layers))
	}
	if errors.Is(err, fs.ErrPermission) {
		return &InputError{Msg: fmt.Sprintf("cannot read %s: %v", where, err), Fix: "make the files readable by the user running c2vm"}
	}
	return &InputError{Msg: fmt.Sprintf("cannot read %s: %v", where, err),
		Fix: "the archive is damaged or not a tar; re-create it (docker export, docker save or skopeo copy) and try again"}
}

// Scan applies every layer's headers to build the final tree.
func (s *layeredSource) Scan(ctx context.Context) (*Inventory, error) {
	s.t = newTree(s.whiteouts)
	for l := range s.layers {
		err := s.forEach(ctx, l, func(_ int, h *tar.Header, _ io.Reader) error {
			n, err := s.t.add(l, h)
			if err != nil {
				return &InputError{Msg: fmt.Sprintf("%s: %v", s.desc, err), Fix: "remove the entry from the image"}
			}
			s.t.record(l, n)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	inv := newInventory()
	err := s.t.walk(func(n *node) error {
		h := n.hdr
		if n.target != nil {
			if holder := n.target.dataHolder(); holder == n {
				h = n.target.hdr // the link carries the data now
			}
		}
		inv.add(n.name, h)
		return nil
	})
	return inv, err
}

// Stream writes all directories first, then every other visible entry in
// layer order, so parents and hardlink targets precede what needs them.
func (s *layeredSource) Stream(ctx context.Context, ts *tarStream) error {
	err := s.t.walk(func(n *node) error {
		if n.isDir() {
			return ts.dir(n.name, n.hdr)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for l := range s.layers {
		created := s.t.byLayer[l]
		err := s.forEach(ctx, l, func(ord int, h *tar.Header, r io.Reader) error {
			if ord >= len(created) {
				return s.corrupt(l, errors.New("the layer changed while it was read"))
			}
			n := created[ord]
			if n == nil || n.isDir() {
				return nil
			}
			if n.target != nil {
				holder := n.target.dataHolder()
				if n.gone || holder == n || holder == nil {
					return nil
				}
				return ts.link(n.name, holder.name, n.target.hdr)
			}
			holder := n.dataHolder()
			if holder == nil {
				return nil
			}
			return ts.entry(holder.name, n.hdr, r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *layeredSource) Close() error { return nil }

// newTarFileSource reads a rootfs tar (plain or gzip), such as docker export
// writes. Whiteout names in it are ordinary files.
func newTarFileSource(p string) *layeredSource {
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		magic := make([]byte, 2)
		if n, _ := f.ReadAt(magic, 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
			if err != nil {
				f.Close()
				return nil, err
			}
			return readCloser{zr, f}, nil
		}
		// The file itself: tar.Reader seeks over contents it does not read,
		// so the header pass costs no data reads.
		return f, nil
	}
	return &layeredSource{desc: "tar file " + p, layers: []layerOpener{open}}
}

type readCloser struct {
	io.Reader
	io.Closer
}
