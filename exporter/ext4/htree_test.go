package ext4

import (
	"fmt"
	"strings"
	"testing"
)

func manyFiles(dirPath string, n int, name func(i int) string) []entry {
	es := []entry{dir(dirPath, 0o755)}
	for i := range n {
		es = append(es, reg(dirPath+"/"+name(i), 0o644, nil))
	}
	return es
}

func TestHtree(t *testing.T) {
	es := manyFiles("big", 50000, func(i int) string { return fmt.Sprintf("file-%06d", i) })
	// 8000 names of 255 bytes: more leaves than the root can index, so an
	// index level appears.
	es = append(es, manyFiles("deep", 8000, func(i int) string {
		return fmt.Sprintf("%06d-%s", i, strings.Repeat("d", 248))
	})...)
	// Non-ASCII names hash differently as signed chars.
	es = append(es, manyFiles("utf8", 3000, func(i int) string { return fmt.Sprintf("Größe-%d-日本語", i) })...)
	// Exactly one block's worth stays linear; a few more become a tree.
	es = append(es, manyFiles("small", 10, func(i int) string { return fmt.Sprint(i) })...)
	img := build(t, testParams(512<<20, 70000), es)
	fsck(t, img)

	mustContain(t, "big", debugfs(t, img, "htree_dump /big"), "Indirect levels: 0", "Number of entries (count): ")
	mustContain(t, "deep", debugfs(t, img, "htree_dump /deep"), "Indirect levels: 1")
	mustContain(t, "utf8", debugfs(t, img, "htree_dump /utf8"), "Indirect levels: 0")
	if st := debugfs(t, img, "stat /small"); !strings.Contains(st, "Flags: 0x80000") || !strings.Contains(st, "Size: 4096") {
		t.Errorf("small directory is not one linear block:\n%s", st)
	}
	if st := debugfs(t, img, "stat /big"); !strings.Contains(st, "Flags: 0x81000") {
		t.Errorf("big directory is not indexed:\n%s", st)
	}
	for _, p := range []string{"/big/file-000000", "/big/file-049999", "/utf8/Größe-2999-日本語",
		"/deep/007999-" + strings.Repeat("d", 248)} {
		mustContain(t, p, debugfs(t, img, "stat \""+p+"\""), "Type: regular")
	}
	ls := debugfs(t, img, "ls /big")
	if n := strings.Count(ls, "file-"); n != 50000 {
		t.Errorf("ls /big: %d entries", n)
	}
}

// Two names with the same hash, placed so that they straddle two leaves:
// the second leaf's key must carry the collision bit, and e2fsck must
// accept the tree.
func TestHtreeCollision(t *testing.T) {
	p := testParams(32<<20, 200)
	var seed [4]uint32
	for i := range seed {
		seed[i] = uint32(p.HashSeed[4*i]) | uint32(p.HashSeed[4*i+1])<<8 | uint32(p.HashSeed[4*i+2])<<16 | uint32(p.HashSeed[4*i+3])<<24
	}
	seen := map[uint32]string{}
	var a, b string
	var h uint32
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("c%07d", i) // rec_len 16
		hh, _ := halfMD4(n, &seed)
		if o, ok := seen[hh]; ok && hh > 1<<31 {
			a, b, h = o, n, hh
		}
		seen[hh] = n
	}
	// Fillers hashing below the pair: 15 of rec_len 264 and one of 100, so
	// that the first of the pair ends leaf 0 (3960+100+16 = 4076 <= 4084)
	// and the second does not fit.
	var names []string
	for i := 0; len(names) < 16; i++ {
		l := 255
		if len(names) == 15 {
			l = 92
		}
		n := fmt.Sprintf("%07d", i)
		n += strings.Repeat("f", l-len(n))
		if hh, _ := halfMD4(n, &seed); hh < h {
			names = append(names, n)
		}
	}
	names = append(names, a, b)
	es := []entry{dir("d", 0o755)}
	for _, n := range names {
		es = append(es, reg("d/"+n, 0o644, nil))
	}
	img := build(t, p, es)
	fsck(t, img)
	mustContain(t, "collision", debugfs(t, img, "htree_dump /d"), fmt.Sprintf("Entry #1: Hash 0x%08x, block 2", h|1))
}
