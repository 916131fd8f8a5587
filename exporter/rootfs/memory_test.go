package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"github.com/c2vm/c2vm/internal/memtest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gzTar writes a gzip'd tar of n entries made by mk to a file.
func gzTar(t *testing.T, n int, mk func(i int) (*tar.Header, string)) string {
	p := filepath.Join(t.TempDir(), "layer.tar.gz")
	f, _ := os.Create(p)
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for i := range n {
		h, body := mk(i)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	f.Close()
	return p
}

// Headers are not kept: 300 entries with 900 KiB PAX records each (270 MB
// declared, a few hundred KiB compressed) cost a few MiB.
func TestBigPAXRecordsAreNotKept(t *testing.T) {
	if testing.Short() && os.Getenv("C2VM_LONG") == "" {
		t.Log("short: 60 entries")
	}
	n := 300
	if testing.Short() {
		n = 60
	}
	big := strings.Repeat("x", 900<<10)
	p := gzTar(t, n, func(i int) (*tar.Header, string) {
		return &tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"comment": big}}, ""
	})
	src, _ := Open(p)
	var err error
	peak := memtest.PeakHeap(func() { _, err = src.Scan(context.Background()) })
	if err != nil {
		t.Fatal(err)
	}
	if peak > 40<<20 {
		t.Errorf("scan peaked at %d MiB of heap", peak>>20)
	}
}

// A deep path costs memory linear in its length, not quadratic: each node
// keeps one component.
func TestDeepPath(t *testing.T) {
	deep := strings.Repeat("a/", 2000) + "f" // 4001 bytes, 2001 components
	p := filepath.Join(t.TempDir(), "deep.tar")
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: deep, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX})
	tw.Close()
	os.WriteFile(p, b.Bytes(), 0o644)
	src, _ := Open(p)
	start := time.Now()
	var inv *Inventory
	var err error
	peak := memtest.PeakHeap(func() { inv, err = src.Scan(context.Background()) })
	if err != nil || inv.Dirs != 2001 {
		t.Fatalf("%v, %+v", err, inv)
	}
	if peak > 16<<20 || time.Since(start) > 2*time.Second {
		t.Errorf("deep path: %d KiB of heap, %s", peak>>10, time.Since(start))
	}
	// 32 KB names are refused, not processed.
	b.Reset()
	tw = tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: strings.Repeat("a/", 16000) + "f", Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	tw.Close()
	os.WriteFile(p, b.Bytes(), 0o644)
	src, _ = Open(p)
	if _, err := src.Scan(context.Background()); err == nil || !strings.Contains(err.Error(), "more than Linux's 4096") {
		t.Errorf("32 KB name: %v", err)
	}
}

// What one entry costs, so that MaxEntries keeps within the memory budget.
func TestMemoryPerEntry(t *testing.T) {
	n := 200000
	if testing.Short() {
		n = 50000
	}
	p := gzTar(t, n, func(i int) (*tar.Header, string) {
		return &tar.Header{Name: fmt.Sprintf("d%d/file-with-a-typical-name-%d.py", i%500, i), Typeflag: tar.TypeReg, Mode: 0o644}, ""
	})
	src, _ := Open(p)
	var err error
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := memtest.PeakHeap(func() { _, err = src.Scan(context.Background()) })
	if err != nil {
		t.Fatal(err)
	}
	per := (peak - before.HeapAlloc) / uint64(n)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	live := (after.HeapAlloc - before.HeapAlloc) / uint64(n)
	t.Logf("%d entries: peak heap %d MiB, %d bytes per entry at the peak, %d live", n, peak>>20, per, live)
	if live*uint64(MaxEntries) > 100<<20 {
		t.Errorf("%d live bytes per entry: MaxEntries (%d) of them take more than 100 MiB", live, MaxEntries)
	}
	runtime.KeepAlive(src)
}
