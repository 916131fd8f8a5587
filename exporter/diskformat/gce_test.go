package diskformat

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGCETar runs GNU tar with GCETarArgs on a sparse file: one member,
// disk.raw, stored sparse and equal to the input.
func TestGCETar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no GNU tar")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "linux.img")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 64<<20-4)
	f.Close()
	dst := filepath.Join(dir, "out.tar.gz")
	if out, err := exec.Command("tar", GCETarArgs(raw, dst)...).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	a, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if len(plain) > 1<<20 {
		t.Errorf("a 64 MiB disk of holes takes %d bytes in the tar: not stored sparse", len(plain))
	}
	tr := tar.NewReader(bytes.NewReader(plain))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != GCEDiskName || h.Typeflag != tar.TypeGNUSparse || h.Size != 64<<20 || h.Uid != 0 || h.ModTime.Unix() != 0 {
		t.Errorf("member %q type %c size %d uid %d time %v", h.Name, h.Typeflag, h.Size, h.Uid, h.ModTime)
	}
	got, _ := io.ReadAll(tr)
	want, _ := os.ReadFile(raw)
	if !bytes.Equal(got, want) {
		t.Error("disk.raw differs from the disk")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("more than one member: %v", err)
	}
}
