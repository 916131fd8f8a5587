package ext4

import (
	"fmt"
	"strings"
	"testing"
)

// sparseFile has n one-byte segments every stride blocks: n extents.
func sparseFile(p string, n int, stride int64) entry {
	e := entry{path: p, file: File{Mode: sIFREG | 0o644, Size: int64(n) * stride * blockSize, Mtime: testTime}}
	for i := range n {
		e.file.Data = append(e.file.Data, Segment{int64(i)*stride*blockSize + 7, 1})
		e.data = append(e.data, byte(i%251+1))
	}
	return e
}

func TestExtentTree(t *testing.T) {
	img := build(t, testParams(64<<20, 100), []entry{
		sparseFile("four", 4, 2),    // fits the inode
		sparseFile("index", 10, 2),  // one leaf block
		sparseFile("deep", 1500, 2), // more than 4 leaves: two levels
	})
	fsck(t, img)
	ex := func(p string) string { return debugfs(t, img, "ex "+p) }
	if s := ex("/four"); strings.Contains(s, "1/ 1") {
		t.Errorf("four extents use an index:\n%s", s)
	}
	mustContain(t, "index", ex("/index"), " 0/ 1   1/  1     0 -    19", " 1/ 1  10/ 10    18 -    18")
	mustContain(t, "deep", ex("/deep"), " 0/ 2   1/  1     0 -  2999", " 1/ 2   5/  5 ", " 2/ 2 ")
	// Blocks: 1500 data + 5 leaves + 1 index block.
	mustContain(t, "deep stat", debugfs(t, img, "stat /deep"), fmt.Sprintf("Blockcount: %d", (1500+5+1)*8))
	got := debugfs(t, img, "cat /deep")
	e := sparseFile("deep", 1500, 2)
	if len(got) != int(e.file.Size) {
		t.Fatalf("size %d", len(got))
	}
	for i, s := range e.file.Data {
		if got[s.Off] != e.data[i] {
			t.Fatalf("segment %d: %d, want %d", i, got[s.Off], e.data[i])
		}
	}
	if strings.Trim(got, "\x00"+string(e.data)) != "" {
		t.Errorf("stray bytes")
	}
}
