package ext4

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteback: written to a file, every byte the writer wrote was handed
// to writeback on the way, in several requests, so the caller's final
// fsync has little left to wait for.
func TestWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "fs.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := testParams(128<<20, 1000)
	if err := f.Truncate(p.Size); err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, p)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(40<<20, 7)
	if err := w.Create("big", &File{Mode: sIFREG | 0o644, Size: int64(len(data)), Mtime: testTime}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	o := w.out
	if o.wbCalls < 4 || o.wbBytes != o.written {
		t.Errorf("%d writeback requests for %d bytes, %d bytes written in %d writes; want at least 4 requests for all of them",
			o.wbCalls, o.wbBytes, o.written, o.writes)
	}
	fsck(t, f.Name())
}
