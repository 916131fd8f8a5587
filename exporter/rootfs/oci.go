package rootfs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Images are read with go-containerregistry, which does not check what it
// reads against digests. Here every blob is: the manifest against the
// index's descriptor, the config against the manifest, each layer's stored
// bytes against its digest and its uncompressed tar against the config's
// diff_id. JSON documents are size-checked before anything parses them.

const maxJSON = 8 << 20 // manifests, indexes, configs

func integrityError(desc, what string) error {
	return usererr.New(fmt.Sprintf("%s: %s does not match its digest: the image is damaged or was altered", desc, what),
		"fetch or save the image again (skopeo copy, docker save, buildx --output type=oci) and check where it came from")

}

// openOCILayout opens oci-layout:DIR[:TAG]. With no tag the layout must
// hold one image (or one index); an index picks this machine's platform.
func openOCILayout(spec, arch string) (Source, error) {
	dir, tag, _ := strings.Cut(spec, ":")
	desc := "oci-layout:" + spec
	fix := "give an OCI image layout directory (skopeo copy ... oci:DIR, or buildx --output type=oci,tar=false)"
	fi, err := os.Stat(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s is not an OCI image layout: %v", dir, err), fix)
	}
	if fi.Size() > maxJSON {
		return nil, usererr.New(fmt.Sprintf("%s: index.json is %d bytes", desc, fi.Size()), fix)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s is not an OCI image layout: %v", dir, err), fix)
	}
	if arch == "" {
		arch = runtime.GOARCH
	}
	lay := ociLayout{dir: dir, desc: desc, arch: arch}
	img, d, err := lay.pick(idx, tag)
	if err != nil {
		return nil, err
	}
	raw, err := lay.blob(d)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(raw, mustRaw(img.RawManifest())) {
		return nil, integrityError(desc, "the manifest")
	}
	return lay.source(img)
}

func mustRaw(b []byte, err error) []byte {
	if err != nil {
		return nil
	}
	return b
}

// ociLayout is a layout being read; arch is the architecture chosen from
// an index of several platforms.
type ociLayout struct{ dir, desc, arch string }

// blob reads a small blob, checking its size and digest.
func (o ociLayout) blob(d v1.Descriptor) ([]byte, error) {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return nil, usererr.New(fmt.Sprintf("%s: unsupported digest %q", o.desc, d.Digest), "use sha256 digests")
	}
	p := filepath.Join(o.dir, "blobs", "sha256", d.Digest.Hex)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() > maxJSON {
		return nil, usererr.New(fmt.Sprintf("%s: blob %s is missing or larger than %d bytes", o.desc, d.Digest, maxJSON), "re-create the layout")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Digest.Hex {
		return nil, integrityError(o.desc, "blob "+d.Digest.String())
	}
	return b, nil
}

// pick selects the image a tag names (or the only one) from an index,
// descending into nested indexes by platform.
func (o ociLayout) pick(idx v1.ImageIndex, tag string) (v1.Image, v1.Descriptor, error) {
	fail := func(msg, fix string) (v1.Image, v1.Descriptor, error) {
		return nil, v1.Descriptor{}, usererr.New(o.desc+": "+msg, fix)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fail(fmt.Sprintf("cannot read index: %v", err), "re-create the layout")
	}
	var cands []v1.Descriptor
	var tags []string
	for _, d := range im.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		if ref != "" {
			tags = append(tags, ref)
		}
		if tag == "" || ref == tag || strings.HasSuffix(ref, ":"+tag) {
			cands = append(cands, d)
		}
	}
	if tag != "" && len(cands) == 0 {
		return fail(fmt.Sprintf("no image tagged %q", tag), fmt.Sprintf("use one of the layout's tags: %s", strings.Join(tags, ", ")))
	}
	if len(cands) > 1 {
		cands = byPlatform(cands, o.arch)
	}
	if len(cands) != 1 {
		return fail(fmt.Sprintf("holds %d images", len(cands)), "name one as oci-layout:DIR:TAG")
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		if _, err := o.blob(d); err != nil {
			return nil, d, err
		}
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return fail(err.Error(), "re-create the layout")
		}
		return o.pick(child, "")
	}
	if _, err := o.blob(d); err != nil {
		return nil, d, err
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return fail(err.Error(), "re-create the layout")
	}
	return img, d, nil
}

// byPlatform keeps the descriptors for linux on arch, or all of them when
// none says its platform.
func byPlatform(ds []v1.Descriptor, arch string) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return ds
	}
	return out
}

// source makes the layered source of an image of the layout, with each
// layer checked against its digest and diff_id.
func (o ociLayout) source(img v1.Image) (Source, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: cannot read the manifest: %v", o.desc, err), "re-create the layout")
	}
	cfgRaw, err := o.blob(m.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(o.desc, cfgRaw, len(m.Layers))
	if err != nil {
		return nil, err
	}
	s := &layeredSource{desc: o.desc, whiteouts: true, config: &cfg.Config, arch: cfg.Architecture}
	for i, d := range m.Layers {
		if d.Digest.Algorithm != "sha256" {
			return nil, usererr.New(fmt.Sprintf("%s: layer %d has an unsupported digest %q", o.desc, i+1, d.Digest), "use sha256 digests")
		}
		p := filepath.Join(o.dir, "blobs", "sha256", d.Digest.Hex)
		diffID := cfg.RootFS.DiffIDs[i]
		s.layers = append(s.layers, Layer{
			Desc: fmt.Sprintf("layer %d of %d (%s)", i+1, len(m.Layers), d.Digest),
			Open: func() (io.ReadCloser, error) {
				f, err := os.Open(p)
				if err != nil {
					return nil, err
				}
				return verifiedLayer(f, d.Digest.Hex, diffID.Hex)
			},
		})
	}
	return s, nil
}

// parseConfig reads an image config and checks that it lists one diff_id
// per layer.
func parseConfig(desc string, raw []byte, layers int) (*v1.ConfigFile, error) {
	var cfg v1.ConfigFile
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: the image config is not valid JSON: %v", desc, err), "re-create the image")
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return nil, usererr.New(fmt.Sprintf("%s: the config lists %d layers, the manifest %d", desc, len(cfg.RootFS.DiffIDs), layers), "re-create the image")
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if d.Algorithm != "sha256" || len(d.Hex) != 64 {
			return nil, usererr.New(fmt.Sprintf("%s: unsupported diff_id %q", desc, d), "use sha256 digests")
		}
	}
	return &cfg, nil
}

// verifiedLayer decompresses a stored layer (gzip, zstd or plain) and
// checks, once it has been read to the end, the stored bytes against
// storedHex (when given) and the tar against diffHex. A mismatch is
// returned by Close.
func verifiedLayer(stored io.ReadCloser, storedHex, diffHex string) (io.ReadCloser, error) {
	v := &verified{stored: stored, storedSum: sha256.New(), diffSum: sha256.New(), storedHex: storedHex, diffHex: diffHex}
	br := bufio.NewReaderSize(io.TeeReader(stored, v.storedSum), 1<<20)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case storedHex == "":
		// Already uncompressed by go-containerregistry.
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			stored.Close()
			return nil, err
		}
		zr.Multistream(true)
		r = zr
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := newZstd(br)
		if err != nil {
			stored.Close()
			return nil, err
		}
		v.zr, r = zr, zr
	}
	v.r, v.br = io.TeeReader(r, v.diffSum), br
	return v, nil
}

type verified struct {
	stored             io.ReadCloser
	zr                 io.Closer
	r                  io.Reader
	br                 *bufio.Reader
	storedSum, diffSum hash.Hash
	storedHex, diffHex string
	eof, closed        bool
}

func (v *verified) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if errors.Is(err, io.EOF) {
		v.eof = true
	}
	return n, err
}

// Close checks the digests when the whole layer was read.
func (v *verified) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	if v.zr != nil {
		v.zr.Close()
	}
	defer v.stored.Close()
	if !v.eof {
		return nil // abandoned early: an error is already on its way
	}
	// Trailing bytes after the compressed stream count as stored bytes.
	if _, err := io.Copy(io.Discard, v.br); err != nil {
		return err
	}
	if v.storedHex != "" && hex.EncodeToString(v.storedSum.Sum(nil)) != v.storedHex {
		return &digestError{"its stored blob does not match the manifest's digest"}
	}
	if hex.EncodeToString(v.diffSum.Sum(nil)) != v.diffHex {
		return &digestError{"its content does not match the config's diff_id"}
	}
	return nil
}

// digestError is a layer that is not what its digests say.
type digestError struct{ what string }

func (e *digestError) Error() string {
	return e.what + ": the image is damaged or was altered"
}

// openDockerArchive opens docker-archive:FILE[:REF], docker save's output.
func openDockerArchive(spec string) (Source, error) {
	file, ref, _ := strings.Cut(spec, ":")
	desc := "docker-archive:" + spec
	fix := "give a docker save archive; with several images in it, name one as docker-archive:FILE:REPO:TAG"
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	if _, err := os.Stat(file); err != nil {
		return nil, usererr.New(fmt.Sprintf("source %s: %v", desc, err), "give the file docker save wrote")
	}
	sizes, err := archiveSizes(file)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot read %s: %v", desc, err), fix)
	}
	if sizes["manifest.json"] > maxJSON {
		return nil, usererr.New(fmt.Sprintf("%s: manifest.json is %d bytes", desc, sizes["manifest.json"]), fix)
	}
	var tag *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, usererr.New(fmt.Sprintf("%s: bad image reference %q: %v", desc, ref, err), "name the image as REPO:TAG")
		}
		tag = &t
	}
	mf, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot read %s: %v", desc, err), fix)
	}
	entry, err := pickArchiveImage(mf, tag)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot read %s: %v", desc, err), fix)
	}
	if sizes[entry.Config] > maxJSON {
		return nil, usererr.New(fmt.Sprintf("%s: config %s is %d bytes", desc, entry.Config, sizes[entry.Config]), fix)
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot read %s: %v", desc, err), fix)
	}
	return archiveSource(desc, img, entry)
}

// archiveSizes lists the sizes of a docker archive's members, to bound what
// is parsed before parsing it.
func archiveSizes(file string) (map[string]int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sizes := map[string]int64{}
	tr := tar.NewReader(f)
	for len(sizes) < 100000 {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return sizes, nil
		}
		if err != nil {
			return nil, err
		}
		sizes[filepath.Clean(h.Name)] = h.Size
	}
	return nil, fmt.Errorf("more than 100000 members")
}

func pickArchiveImage(mf tarball.Manifest, tag *name.Tag) (*tarball.Descriptor, error) {
	if tag == nil {
		if len(mf) != 1 {
			return nil, fmt.Errorf("the archive holds %d images", len(mf))
		}
		return &mf[0], nil
	}
	for i := range mf {
		for _, t := range mf[i].RepoTags {
			if nt, err := name.NewTag(t); err == nil && nt.String() == tag.String() {
				return &mf[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no image tagged %s", tag)
}

// archiveSource checks the config against the digest its name carries and
// each layer's content against its diff_id.
func archiveSource(desc string, img v1.Image, entry *tarball.Descriptor) (Source, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: cannot read the config: %v", desc, err), "save the image again")
	}
	base := strings.TrimSuffix(filepath.Base(entry.Config), ".json")
	if sum := sha256.Sum256(raw); len(base) == 64 && base != hex.EncodeToString(sum[:]) {
		return nil, integrityError(desc, "the config")
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: cannot read the layers: %v", desc, err), "save the image again")
	}
	cfg, err := parseConfig(desc, raw, len(layers))
	if err != nil {
		return nil, err
	}
	s := &layeredSource{desc: desc, whiteouts: true, config: &cfg.Config, arch: cfg.Architecture}
	for i, l := range layers {
		diffHex := cfg.RootFS.DiffIDs[i].Hex
		s.layers = append(s.layers, Layer{
			Desc: fmt.Sprintf("layer %d of %d (%s)", i+1, len(layers), cfg.RootFS.DiffIDs[i]),
			Open: func() (io.ReadCloser, error) {
				rc, err := l.Uncompressed()
				if err != nil {
					return nil, err
				}
				return verifiedLayer(rc, "", diffHex)
			},
		})
	}
	return s, nil
}
