// Package ocitest builds tar layers and OCI image layouts for tests.
package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Tar builds a tar archive entry by entry.
type Tar struct {
	buf bytes.Buffer
	tw  *tar.Writer
}

func NewTar() *Tar {
	t := &Tar{}
	t.tw = tar.NewWriter(&t.buf)
	return t
}

var epoch = time.Unix(1700000000, 0)

func (t *Tar) add(h *tar.Header, body string) *Tar {
	if h.ModTime.IsZero() {
		h.ModTime = epoch
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(body))
	}
	if err := t.tw.WriteHeader(h); err != nil {
		panic(err)
	}
	io.WriteString(t.tw, body)
	return t
}

// Dir adds a directory.
func (t *Tar) Dir(name string, mode int64) *Tar {
	return t.add(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode}, "")
}

// File adds a regular file owned by root.
func (t *Tar) File(name, body string, mode int64) *Tar {
	return t.add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, body)
}

// Entry adds any header; Size is set from body for regular files.
func (t *Tar) Entry(h tar.Header, body string) *Tar { return t.add(&h, body) }

// Link adds a hardlink.
func (t *Tar) Link(name, target string) *Tar {
	return t.add(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}, "")
}

// Symlink adds a symbolic link.
func (t *Tar) Symlink(name, target string) *Tar {
	return t.add(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, "")
}

// Bytes closes the archive and returns it.
func (t *Tar) Bytes() []byte {
	t.tw.Close()
	return t.buf.Bytes()
}

// WriteLayout writes an OCI image layout at dir holding one image, tagged
// tag, whose layers are the given tars (gzip-compressed, bottom first).
func WriteLayout(dir, tag string, layers ...[]byte) error {
	ls, err := fromBytes(layers)
	if err != nil {
		return err
	}
	return writeImage(dir, tag, ls)
}

// fromBytes makes gzip layers of tars held in memory.
func fromBytes(layers [][]byte) ([]v1.Layer, error) {
	var ls []v1.Layer
	for _, l := range layers {
		b := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return nil, err
		}
		ls = append(ls, layer)
	}
	return ls, nil
}

// WriteLayoutFiles is WriteLayout with layers read from tar files,
// compressed at a gzip level (gzip.BestSpeed keeps large layers quick).
func WriteLayoutFiles(dir, tag string, level int, files ...string) error {
	var ls []v1.Layer
	for _, f := range files {
		p := f
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(p) }, tarball.WithCompressionLevel(level))
		if err != nil {
			return err
		}
		ls = append(ls, layer)
	}
	return writeImage(dir, tag, ls)
}

func writeImage(dir, tag string, ls []v1.Layer) error {
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
}

// WriteDockerArchive writes a docker save style archive at path holding one
// image tagged ref, whose layers are the given tars.
func WriteDockerArchive(path, ref string, layers ...[]byte) error {
	ls, err := fromBytes(layers)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// PAXText is records in PAX's "length key=value\n" form, sorted by key,
// written as is (GNU.sparse.* included).
func PAXText(records map[string]string) string {
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pax strings.Builder
	for _, k := range keys {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		fmt.Fprintf(&pax, "%d%s", n, rec)
	}
	return pax.String()
}

// Raw adds a hand-made ustar header that archive/tar's writer would refuse
// (hostile names, odd types); the body follows, padded to a block.
func (t *Tar) Raw(name string, typeflag byte, linkname, body string) *Tar {
	return t.RawPAX(name, typeflag, linkname, int64(len(body)), nil, body)
}

// RawPAX adds a hand-made PAX extended header with the given records
// (written as is, GNU.sparse.* included), then a ustar header declaring
// size, then body (which may differ from size, to test readers).
func (t *Tar) RawPAX(name string, typeflag byte, linkname string, size int64, records map[string]string, body string) *Tar {
	t.tw.Flush()
	if len(records) > 0 {
		pax := PAXText(records)
		t.rawBlock("PaxHeaders/"+name, 'x', "", int64(len(pax)), pax)
	}
	t.rawBlock(name, typeflag, linkname, size, body)
	return t
}

func (t *Tar) rawBlock(name string, typeflag byte, linkname string, size int64, body string) {
	var h [512]byte
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", epoch.Unix()))
	h[156] = typeflag
	copy(h[157:257], linkname)
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	// Straight into the archive: the tar writer keeps no state between
	// entries once flushed.
	t.buf.Write(h[:])
	t.buf.WriteString(body)
	t.buf.Write(make([]byte, (512-len(body)%512)%512))
}

// WritePlatformLayout writes an OCI image layout at dir whose index holds
// one image per architecture, each tagged tag, with linux and that
// architecture in its descriptor and its config, and the one layer given.
func WritePlatformLayout(dir, tag string, layers map[string][]byte) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	for _, arch := range slices.Sorted(maps.Keys(layers)) {
		ls, err := fromBytes([][]byte{layers[arch]})
		if err != nil {
			return err
		}
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		err = p.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}),
			layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
		if err != nil {
			return err
		}
	}
	return nil
}

// Gzip compresses b, as layers and some kernels (Ubuntu's arm64 vmlinuz)
// are.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}
