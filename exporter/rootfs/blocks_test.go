package rootfs

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/ext4"
)

// The inventory's bounds, from counts only, are never below the ext4
// writer's own accounting of the same entries.
func TestBoundsCoverExt4(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 5000 {
		size := r.Int63n(1 << uint(r.Intn(40)+1))
		var segs []ext4.Segment
		var data int64
		if i%2 == 1 && size > 0 {
			for off := r.Int63n(size); off < size; {
				l := min(r.Int63n(size/4+1)+1, size-off)
				segs = append(segs, ext4.Segment{Off: off, Len: l})
				data += l
				off += l + r.Int63n(size/4+1) + 1
			}
		} else {
			data = size
		}
		want, err := ext4.FileBlocks(size, segs)
		if err != nil {
			t.Fatal(err)
		}
		n := max(int64(len(segs)), 1)
		if got := fileBlocks(data, n, segs != nil); got < want {
			t.Fatalf("size %d, %d segments: bound %d < ext4's %d", size, len(segs), got, want)
		}
	}
	for i := range 2000 {
		var xs []Xattr
		var exs []ext4.Xattr
		for range r.Intn(4) {
			name := []string{"user.", "security.", "trusted."}[r.Intn(3)] + strings.Repeat("n", r.Intn(40)+1)
			val := make([]byte, r.Intn(120))
			xs = append(xs, Xattr{name, val})
			exs = append(exs, ext4.Xattr{Name: name, Value: val})
		}
		blocks, err := ext4.XattrBlocks(exs, i%2 == 0)
		if err != nil {
			continue
		}
		if blocks > 0 && xattrInline(xs) <= inodeXattrSpace {
			t.Fatalf("%v: ext4 needs a block, the inventory says none", xs)
		}
	}
}
