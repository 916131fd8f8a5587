package rootfs

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// Source is a root filesystem to put on a disk. It is read twice: Scan
// learns sizes and boot files from metadata, Stream then sends the tree.
type Source interface {
	Scan(ctx context.Context) (*Inventory, error)
	Stream(ctx context.Context, sink Sink) error
	// ImageConfig is the image's configuration (entrypoint, command,
	// environment…) for sources that are images, nil for the others.
	ImageConfig() *v1.Config
	// Architecture is the image config's architecture (amd64, arm64…),
	// "" for a source without a config.
	Architecture() string
	String() string
	Close() error
}

// Open parses a SOURCE argument: a directory, a tar file (plain, gzip or
// zstd), oci-layout:DIR[:TAG] or docker-archive:FILE[:REF].
func Open(spec string) (Source, error) {
	return OpenFor(spec, "")
}

// OpenFor is Open choosing, from an OCI layout's index of several
// platforms, linux on arch ("" for this machine's).
func OpenFor(spec, arch string) (Source, error) {
	if rest, ok := strings.CutPrefix(spec, "oci-layout:"); ok {
		return openOCILayout(rest, arch)
	}
	if rest, ok := strings.CutPrefix(spec, "docker-archive:"); ok {
		return openDockerArchive(rest)
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("source %s does not exist", spec),
			"give a root filesystem directory, a tar file, oci-layout:DIR[:TAG] or docker-archive:FILE")

	}
	if fi.IsDir() {
		return openDir(spec)
	}
	if !fi.Mode().IsRegular() {
		return nil, usererr.New(fmt.Sprintf("source %s is neither a directory nor a file", spec), "give a directory or a tar file")
	}
	return &layeredSource{desc: "tar file " + spec, layers: []Layer{{Open: func() (io.ReadCloser, error) { return openTar(spec) }}}}, nil
}

// openTar opens a rootfs tar, decompressing gzip or zstd. A plain file is
// returned as is: archive/tar then seeks over contents it does not read.
func openTar(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, 4)
	n, _ := f.ReadAt(magic, 0)
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			f.Close()
			return nil, err
		}
		return readCloser{zr, f}, nil
	case n == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := newZstd(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			f.Close()
			return nil, err
		}
		return readCloser{zr, closers{zr, f}}, nil
	}
	return f, nil
}

// newZstd decompresses with bounded memory whatever the frame declares.
func newZstd(r io.Reader) (io.ReadCloser, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderMaxWindow(128<<20))
	if err != nil {
		return nil, err
	}
	return zr.IOReadCloser(), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type closers []io.Closer

func (c closers) Close() error {
	var first error
	for _, x := range c {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
