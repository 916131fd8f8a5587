package exporter

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageSource turns an OCI image's layers into a layeredSource.
// go-containerregistry reads the layout or archive, decompresses and checks
// each layer against its digest.
func imageSource(desc string, img v1.Image) (*layeredSource, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("cannot read the layers of %s: %v", desc, err), Fix: "check that the image is complete"}
	}
	s := &layeredSource{desc: desc, whiteouts: true}
	for _, l := range layers {
		s.layers = append(s.layers, l.Uncompressed)
	}
	return s, nil
}

// newOCILayoutSource opens oci-layout:DIR[:TAG]. With no tag the layout must
// hold one image (or one index); an index picks this machine's platform.
func newOCILayoutSource(spec string) (*layeredSource, error) {
	dir, tag, _ := strings.Cut(spec, ":")
	desc := "oci-layout:" + spec
	if _, err := os.Stat(dir); err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("source %s: %v", desc, err), Fix: "give an OCI image layout directory (skopeo copy ... oci:DIR, or buildx --output type=oci,tar=false)"}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("%s is not an OCI image layout: %v", dir, err), Fix: "give a directory with index.json, oci-layout and blobs/"}
	}
	img, err := pickImage(idx, tag, desc)
	if err != nil {
		return nil, err
	}
	return imageSource(desc, img)
}

// pickImage selects the image a tag names (or the only one) from an index,
// descending into nested indexes by platform.
func pickImage(idx v1.ImageIndex, tag, desc string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("%s: cannot read index: %v", desc, err), Fix: "re-create the layout"}
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
		return nil, &InputError{Msg: fmt.Sprintf("%s: no image tagged %q", desc, tag), Fix: fmt.Sprintf("use one of the layout's tags: %s", strings.Join(tags, ", "))}
	}
	if len(cands) > 1 {
		cands = byPlatform(cands)
	}
	if len(cands) != 1 {
		return nil, &InputError{Msg: fmt.Sprintf("%s holds %d images", desc, len(cands)), Fix: "name one as oci-layout:DIR:TAG"}
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("%s: %v", desc, err), Fix: "re-create the layout"}
		}
		return pickImage(child, "", desc)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("%s: %v", desc, err), Fix: "re-create the layout"}
	}
	return img, nil
}

// byPlatform keeps the descriptors for this machine's linux platform, or all
// of them when none says its platform.
func byPlatform(ds []v1.Descriptor) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return ds
	}
	return out
}

// newDockerArchiveSource opens docker-archive:FILE[:REF], docker save's output.
func newDockerArchiveSource(spec string) (*layeredSource, error) {
	file, ref, _ := strings.Cut(spec, ":")
	desc := "docker-archive:" + spec
	f, err := os.Open(file)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("source %s: %v", desc, err), Fix: "give the file docker save wrote"}
	}
	f.Close()
	var tag *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("%s: bad image reference %q: %v", desc, ref, err), Fix: "name the image as REPO:TAG"}
		}
		tag = &t
	}
	img, err := tarball.Image(func() (io.ReadCloser, error) { return os.Open(file) }, tag)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("cannot read %s: %v", desc, err), Fix: "give a docker save archive; with several images in it, name one as docker-archive:FILE:REPO:TAG"}
	}
	return imageSource(desc, img)
}
