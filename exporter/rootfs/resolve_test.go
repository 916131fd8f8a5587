package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// chainLayer is a gzip'd layer of 39 symlinks l1 -> l2 -> ... -> l39 -> d,
// each target padded with pad to about size bytes, and n files under l1.
func chainLayer(t *testing.T, pad string, size, n int) string {
	const links = 39
	return gzTar(t, 1+links+n, func(i int) (*tar.Header, string) {
		switch {
		case i == 0:
			return &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, ""
		case i <= links:
			next := fmt.Sprintf("l%d", i+1)
			if i == links {
				next = "d"
			}
			target := strings.Repeat(pad, (size-len(next))/len(pad)) + next
			return &tar.Header{Name: fmt.Sprintf("l%d", i), Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}, ""
		}
		return &tar.Header{Name: fmt.Sprintf("l1/f%d", i), Typeflag: tar.TypeReg, Mode: 0o644}, ""
	})
}

// scanChain scans a chain layer and returns the inventory, the error and
// how many path components its lookups walked.
func scanChain(t *testing.T, pad string, size, n int) (*Inventory, error, int64) {
	src, err := Open(chainLayer(t, pad, size, n))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	inv, err := src.Scan(context.Background())
	walked := src.(*layeredSource).t.walked
	t.Logf("%d-byte targets of %q, %d files: %s, %d components walked, %v", size, pad, n, time.Since(start), walked, err)
	return inv, err, walked
}

// Issue 19's layer: 39 symlinks of 4 KB "./" targets and 20,000 files
// under the first (a 139 KiB gzip). Each lookup through the chain walks a
// few components per link, not the targets' thousands: the work is
// linear in the entries, the files land in d.
func TestLinkChainLookupsAreCheap(t *testing.T) {
	const n = 20000
	inv, err, walked := scanChain(t, "./", 4090, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(1 + 1 + 39 + n); inv.Entries != want || inv.Dirs != 2 {
		t.Errorf("%d entries, %d directories; want %d, 2", inv.Entries, inv.Dirs, want)
	}
	if limit := int64(64 * (40 + n)); walked > limit {
		t.Errorf("%d components walked for %d entries, more than %d", walked, 40+n, limit)
	}
}

// Targets of "d/../" pairs are real steps down and up. A chain of them
// longer than maxLinkWalk components is refused at the first lookup
// through it; one just within it costs each lookup at most that many.
func TestLinkWalkBounded(t *testing.T) {
	_, err, walked := scanChain(t, "d/../", 4090, 20000)
	if err == nil || !strings.Contains(err.Error(), "path components through symbolic links") {
		t.Errorf("4 KB targets: %v", err)
	}
	if walked > 2*maxLinkWalk {
		t.Errorf("4 KB targets: %d components walked before the error", walked)
	}
	// 39 targets of 19 components: some 740 components a lookup.
	const n = 20000
	inv, err, walked := scanChain(t, "d/../", 50, n)
	if err != nil || inv.Entries != int64(1+1+39+n) {
		t.Fatalf("targets within the bound: %v, %+v", err, inv)
	}
	if limit := int64((maxLinkWalk + 64) * (40 + n)); walked > limit {
		t.Errorf("%d components walked for %d entries, more than %d", walked, 40+n, limit)
	}
}
