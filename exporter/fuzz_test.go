package exporter

import (
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
)

// FuzzEstimate: whatever an inventory declares (headers are hostile), the
// estimate answers at once, either an error or sizes in order that fit the
// disk limit.
func FuzzEstimate(f *testing.F) {
	f.Add(int64(13000), int64(1800), int64(600<<20), int64(160000))
	f.Add(int64(1), int64(1), int64(1<<52), int64(1<<40))
	f.Add(int64(1<<40), int64(0), int64(0), int64(1))
	f.Add(int64(-1), int64(-5), int64(-1), int64(-1))
	f.Fuzz(func(t *testing.T, entries, dirs, content, blocks int64) {
		start := time.Now()
		e, err := Estimate(&rootfs.Inventory{Entries: entries, Dirs: dirs, Content: content, Blocks: blocks}, 0, systemHeadroom)
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("took %s", d)
		}
		if err != nil {
			return
		}
		if e.Min <= 0 || e.Auto < e.Min || e.Auto > disk.MaxDiskSize || e.Inodes <= entries || e.Content < blocks*blockSize {
			t.Fatalf("estimate out of order: %+v for %d entries, %d blocks", e, entries, blocks)
		}
		if _, err := disk.NewLayout(disk.Hybrid, disk.AMD64, e.Auto, 0); err != nil {
			t.Fatalf("layout: %v", err)
		}
	})
}
