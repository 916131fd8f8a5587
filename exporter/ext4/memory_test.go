package ext4

import (
	"encoding/binary"
	"fmt"
	"github.com/c2vm/c2vm/internal/memtest"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// 60,000 files, each with a distinct 3.9 KiB user.x that needs an xattr
// block of its own: the writer keeps a small record per file, not the
// block, so its peak heap stays far below the 150 MiB an assembly may use.
// The collector runs at a quarter more heap rather than twice the live
// heap, so the peak shows what the writer holds, not garbage awaiting
// collection; the heap the test binary had before is left out.
func TestXattrBlocksMemory(t *testing.T) {
	const files, valueLen = 60000, 3900
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	base := liveHeap()
	w, err := NewWriter(nullWriterAt{}, testParams(1<<30, files+100))
	if err != nil {
		t.Fatal(err)
	}
	before := liveHeap()
	var held uint64
	start := time.Now()
	peak := memtest.PeakHeap(func() {
		for i := 0; i < files && err == nil; i++ {
			if i%1000 == 0 {
				err = w.Create(fmt.Sprintf("d%02d", i/1000), &File{Mode: sIFDIR | 0o755}, nil)
			}
			// A fresh value per file, as a caller's tar reader hands them over.
			v := make([]byte, valueLen)
			binary.LittleEndian.PutUint64(v, uint64(i))
			f := &File{Mode: sIFREG | 0o644, Xattrs: []Xattr{{"user.x", v}}}
			if err == nil {
				err = w.Create(fmt.Sprintf("d%02d/file-%05d", i/1000, i), f, nil)
			}
		}
		held = liveHeap() - before
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	peak -= min(peak, base)
	per := held / files
	t.Logf("%d files with a %d-byte xattr each: the writer's peak heap %d MiB, %d bytes held per file before Close, %v",
		files, valueLen, peak>>20, per, time.Since(start))
	if peak > 64<<20 {
		t.Errorf("the writer's peak heap is %d MiB, want at most 64 MiB", peak>>20)
	}
	if per > 1024 {
		t.Errorf("%d bytes held per file, want at most 1 KiB (a record, not the block)", per)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
