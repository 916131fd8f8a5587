package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

func writeLayoutDir(t *testing.T, layers ...[]byte) string {
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.WriteLayout(dir, "t", layers...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// blobs lists a layout's blobs by what they hold.
func blobs(t *testing.T, dir string) (manifest, config string, layers []string) {
	var idx struct{ Manifests []struct{ Digest string } }
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	json.Unmarshal(b, &idx)
	path := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	manifest = path(idx.Manifests[0].Digest)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	b, _ = os.ReadFile(manifest)
	json.Unmarshal(b, &m)
	for _, l := range m.Layers {
		layers = append(layers, path(l.Digest))
	}
	return manifest, path(m.Config.Digest), layers
}

func wantErr(t *testing.T, spec string, want ...string) {
	t.Helper()
	src, err := Open(spec)
	if err == nil {
		_, _, err = streamAll(t, src)
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("want an error with %q, got %v", w, err)
		}
	}
}

// A layer blob replaced by another valid gzip layer, a changed config and a
// changed manifest are each refused, naming what does not match.
func TestLayoutDigestsChecked(t *testing.T) {
	base := ocitest.NewTar().File("etc/a", "a", 0o644).Bytes()
	top := ocitest.NewTar().File("etc/b", "b", 0o644).Bytes()
	evil := ocitest.NewTar().File("etc/b", "evil", 0o644).Bytes()

	dir := writeLayoutDir(t, base, top)
	_, _, layers := blobs(t, dir)
	os.WriteFile(layers[1], ocitest.Gzip(evil), 0o644)
	wantErr(t, "oci-layout:"+dir, "layer 2 of 2", "does not match", "fix:")

	dir = writeLayoutDir(t, base, top)
	_, cfg, _ := blobs(t, dir)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`"rootfs"`), []byte(`"rootfs" `), 1), 0o644)
	wantErr(t, "oci-layout:"+dir, "does not match its digest")

	dir = writeLayoutDir(t, base, top)
	mf, _, _ := blobs(t, dir)
	b, _ = os.ReadFile(mf)
	os.WriteFile(mf, append(b, ' '), 0o644)
	wantErr(t, "oci-layout:"+dir, "does not match its digest")
}

// docker save archives: each layer's content is checked against the
// config's diff_id.
func TestDockerArchiveDiffIDsChecked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "saved.tar")
	l0 := ocitest.NewTar().Dir("etc", 0o755).File("etc/a", "a0", 0o644).File("etc/b", "b", 0o644).Bytes()
	l1 := ocitest.NewTar().File("etc/a", "a1", 0o644).File("etc/.wh.b", "", 0o644).Bytes()
	if err := ocitest.WriteDockerArchive(p, "example.test/app:v1", l0, l1); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"docker-archive:" + p, "docker-archive:" + p + ":example.test/app:v1"} {
		src, err := Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		_, s := mustStream(t, src)
		if got, _ := s.content("etc/a"); got != "a1" || s.entries["etc/b"] != nil || src.ImageConfig() == nil {
			t.Errorf("%s: etc/a %q, etc/b %v", spec, got, s.entries["etc/b"])
		}
	}
	wantErr(t, "docker-archive:"+p+":example.test/other:v2", "no image tagged")

	// Swap the second layer's member for another valid gzip tar.
	tampered := filepath.Join(t.TempDir(), "tampered.tar")
	rewriteMember(t, p, tampered, func(name string, body []byte) []byte {
		if strings.HasSuffix(name, ".tar.gz") && bytes.Contains(gunzip(body), []byte("etc/.wh.b")) {
			return ocitest.Gzip(ocitest.NewTar().File("etc/a", "evil", 0o644).File("etc/.wh.b", "", 0o644).Bytes())
		}
		return body
	})
	wantErr(t, "docker-archive:"+tampered, "layer 2 of 2", "diff_id")
}

func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(zr)
	return out
}

func rewriteMember(t *testing.T, in, out string, fn func(string, []byte) []byte) {
	b, _ := os.ReadFile(in)
	tr := tar.NewReader(bytes.NewReader(b))
	var o bytes.Buffer
	tw := tar.NewWriter(&o)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		body, _ := io.ReadAll(tr)
		body = fn(h.Name, body)
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	os.WriteFile(out, o.Bytes(), 0o644)
}

// Sparse files in layers keep their holes; sizes beyond ext4's reach are
// refused; a 1 TiB hole costs neither time nor disk.
func TestSparseInLayers(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "hole"))
	f.WriteAt([]byte("data at 1 GiB"), 1<<30)
	f.Truncate(1 << 40)
	f.Close()
	tarPath := filepath.Join(t.TempDir(), "s.tar")
	if out, err := exec.Command("tar", "-S", "--format=gnu", "-cf", tarPath, "-C", dir, "hole").CombinedOutput(); err != nil {
		t.Skipf("tar -S of a 1 TiB file: %v %s", err, out)
	}
	b, _ := os.ReadFile(tarPath)
	start := time.Now()
	inv, s := mustStream(t, ociLayoutOf(t, b))
	e := s.entries["hole"]
	if e == nil || e.Size != 1<<40 || len(e.Data) != 1 || e.Data[0].Off > 1<<30 || s.data["hole"] == "" {
		t.Fatalf("sparse entry: %+v", e)
	}
	if inv.Content > 1<<20 || inv.Blocks > 1000 || time.Since(start) > 5*time.Second {
		t.Errorf("1 TiB hole: content %d, blocks %d, %s", inv.Content, inv.Blocks, time.Since(start))
	}

	// 2^52 bytes declared (PAX 0.1 map): beyond ext4, refused at once.
	huge := ocitest.NewTar().RawPAX("GNUSparseFile.0/big", '0', "", 10, map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": "big",
		"GNU.sparse.size": "4503599627370496", "GNU.sparse.numblocks": "1", "GNU.sparse.map": "4503599627370000,10"}, "0123456789")
	src := ociLayoutOf(t, huge.Bytes())
	start = time.Now()
	if _, err := src.Scan(context.Background()); err == nil || !strings.Contains(err.Error(), "beyond ext4") || time.Since(start) > time.Second {
		t.Errorf("2^52 sparse file: %v after %s", err, time.Since(start))
	}
	// A map that names more data than the archive holds.
	bad := ocitest.NewTar().RawPAX("GNUSparseFile.0/x", '0', "", 10, map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": "x",
		"GNU.sparse.size": "100000", "GNU.sparse.numblocks": "1", "GNU.sparse.map": "0,20"}, "0123456789")
	if _, err := ociLayoutOf(t, bad.Bytes()).Scan(context.Background()); err == nil {
		t.Error("inconsistent sparse map accepted")
	}
}

// From an index of several platforms the source for the architecture asked
// for is read, and says its architecture; without one, this machine's.
func TestOCILayoutPlatforms(t *testing.T) {
	dir := t.TempDir()
	layers := map[string][]byte{
		"amd64": ocitest.NewTar().File("which", "amd64", 0o644).Bytes(),
		"arm64": ocitest.NewTar().File("which", "arm64", 0o644).Bytes(),
	}
	if err := ocitest.WritePlatformLayout(dir, "v1", layers); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64", ""} {
		src, err := OpenFor("oci-layout:"+dir+":v1", arch)
		if err != nil {
			t.Fatalf("%q: %v", arch, err)
		}
		want := arch
		if arch == "" {
			want = runtime.GOARCH
		}
		if got := src.Architecture(); got != want {
			t.Errorf("asked for %q: the source says %q, want %q", arch, got, want)
		}
		_, s := mustStream(t, src)
		if got, _ := s.content("which"); got != want {
			t.Errorf("asked for %q: read the %q image", arch, got)
		}
		src.Close()
	}
	if _, err := OpenFor("oci-layout:"+dir+":v1", "riscv64"); err == nil || !strings.Contains(err.Error(), "holds 2 images") {
		t.Errorf("riscv64 from an amd64+arm64 index: %v", err)
	}
}
