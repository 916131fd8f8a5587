package ext4

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The checksum patched for a shared block's final h_refcount is the one a
// block written with that count has.
func TestRefcountCsum(t *testing.T) {
	b := make([]byte, blockSize)
	encodeXattrBlock(b, []xentry{{index: 1, name: "x", value: bytes.Repeat([]byte("v"), 3000)}})
	const seed, blk = 0x12345678, 1<<33 + 77
	one := xattrBlockCsum(seed, blk, b)
	for _, refs := range []uint32{1, 2, 3, 1000, xattrMaxRefs} {
		binary.LittleEndian.PutUint32((*ext4XattrHeader)(b).h_refcount(), refs)
		if got, want := refcountCsum(one, refs), xattrBlockCsum(seed, blk, b); got != want {
			t.Errorf("refcount %d: patched checksum %#x, want %#x", refs, got, want)
		}
	}
}

// xattrUse is an inode as debugfs stat shows it: its xattr block and the
// first block of its data.
type xattrUse struct{ acl, data uint64 }

var (
	fileACLRe   = regexp.MustCompile(`File ACL: (\d+)`)
	firstDataRe = regexp.MustCompile(`EXTENTS:\n\(0[^)]*\):(\d+)`)
)

// statXattrUse runs stat on every path in one debugfs.
func statXattrUse(t *testing.T, img string, paths []string) []xattrUse {
	t.Helper()
	cmds := filepath.Join(t.TempDir(), "cmds")
	var req strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&req, "stat /%s\n", p)
	}
	if err := os.WriteFile(cmds, []byte(req.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool(t, "debugfs"), "-f", cmds, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	stats := strings.Split(string(out), "\ndebugfs: stat ")[1:]
	if len(stats) != len(paths) {
		t.Fatalf("%d stats for %d paths:\n%s", len(stats), len(paths), out)
	}
	uses := make([]xattrUse, len(paths))
	for i, s := range stats {
		m := fileACLRe.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("stat /%s:\n%s", paths[i], s)
		}
		uses[i].acl, _ = strconv.ParseUint(m[1], 10, 64)
		if m := firstDataRe.FindStringSubmatch(s); m != nil {
			uses[i].data, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	return uses
}

// xattrRefcount reads an xattr block's h_refcount from the image.
func xattrRefcount(t *testing.T, img string, blk uint64) uint32 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h ext4XattrHeader
	if _, err := f.ReadAt(h[:], int64(blk)*blockSize); err != nil {
		t.Fatal(err)
	}
	if m := binary.LittleEndian.Uint32(h.h_magic()); m != xattrMagic {
		t.Fatalf("block %d: magic %#x", blk, m)
	}
	return binary.LittleEndian.Uint32(h.h_refcount())
}

// eaGet reads one xattr's value back with debugfs.
func eaGet(t *testing.T, img, path, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "value")
	debugfs(t, img, fmt.Sprintf("ea_get -f %s /%s %s", out, path, name))
	v, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func withXattr(e entry, value []byte) entry {
	e.file.Xattrs = []Xattr{{"user.big", value}}
	return e
}

// sharingTree: 2100 files with one large xattr value; 20 files with values
// of their own; directories given again with other xattrs, which drops
// their first blocks (one taken back later by a file with the same value).
func sharingTree() (es []entry, common []byte, own func(int) []byte) {
	common = bytes.Repeat([]byte("S"), 3000)
	own = func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 3000) }
	es = []entry{dir("s", 0o755), dir("d", 0o755),
		withXattr(dir("r1", 0o755), own(21)), withXattr(dir("r1", 0o755), common),
		withXattr(dir("r2", 0o755), common), withXattr(dir("r2", 0o755), common),
		withXattr(dir("r3", 0o755), own(22)), dir("r3", 0o755),
		withXattr(reg("late", 0o644, []byte("l")), own(22))}
	for i := range 2100 {
		es = append(es, withXattr(reg(fmt.Sprintf("s/f%04d", i), 0o644, []byte("s")), common))
	}
	for i := range 20 {
		es = append(es, withXattr(reg(fmt.Sprintf("d/f%02d", i), 0o644, []byte("d")), own(i)))
	}
	return es, common, own
}

// Identical xattr blocks are shared (h_refcount counts the users, up to the
// kernel's 1024), distinct ones are not, each is written when its inode is
// (just before the file's data), and the result is reproducible and clean.
func TestXattrBlocksShared(t *testing.T) {
	es, common, own := sharingTree()
	p := testParams(64<<20, 3000)
	img := build(t, p, es)
	fsck(t, img)
	var paths []string
	for _, e := range es[2:] {
		if !slices.Contains(paths, e.path) {
			paths = append(paths, e.path)
		}
	}
	uses := statXattrUse(t, img, paths)
	users := map[uint64]uint32{}
	for i, u := range uses {
		if u.acl != 0 {
			users[u.acl]++
		}
		if strings.HasPrefix(paths[i], "d/") && u.data != u.acl+1 {
			t.Errorf("%s: xattr block %d, data at %d: not written as the file came", paths[i], u.acl, u.data)
		}
	}
	commonBlocks := map[uint64]bool{}
	for i, u := range uses {
		if strings.HasPrefix(paths[i], "s/") || paths[i] == "r1" || paths[i] == "r2" {
			commonBlocks[u.acl] = true
		}
	}
	if len(commonBlocks) != 3 { // 2102 users, at most 1024 per block
		t.Errorf("the common value is in %d blocks, want 3", len(commonBlocks))
	}
	if own := len(users) - len(commonBlocks); own != 21 { // d/f00..f19 and late
		t.Errorf("%d blocks of their own, want 21", own)
	}
	for blk, n := range users {
		if rc := xattrRefcount(t, img, blk); rc != n {
			t.Errorf("block %d: h_refcount %d, %d users", blk, rc, n)
		}
	}
	for _, c := range []struct {
		path string
		want []byte
	}{{"s/f0000", common}, {"s/f2099", common}, {"r1", common}, {"d/f07", own(7)}, {"late", own(22)}} {
		if got := eaGet(t, img, c.path, "user.big"); !bytes.Equal(got, c.want) {
			t.Errorf("%s: user.big reads back as %.20q… (%d bytes)", c.path, got, len(got))
		}
	}
	mustContain(t, "r3", debugfs(t, img, "stat /r3"), "File ACL: 0")
	if sum(t, img) != sum(t, build(t, p, es)) {
		t.Error("two builds differ")
	}
}

func sum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// A full sharing table starts afresh: a value seen before it did gets a
// new block, and the filesystem stays clean.
func TestXattrTableStartsAfresh(t *testing.T) {
	defer func(n int) { xattrTableMax = n }(xattrTableMax)
	xattrTableMax = 2
	var es []entry
	for i, v := range []string{"A", "B", "A", "C", "A"} {
		es = append(es, withXattr(reg(fmt.Sprintf("f%d", i), 0o644, nil), bytes.Repeat([]byte(v), 3000)))
	}
	img := build(t, testParams(16<<20, 100), es)
	fsck(t, img)
	u := statXattrUse(t, img, []string{"f0", "f2", "f4"})
	if u[0].acl != u[1].acl || u[2].acl == u[0].acl {
		t.Errorf("blocks of A: %v, want the first two shared and the third apart", u)
	}
	if rc := xattrRefcount(t, img, u[0].acl); rc != 2 {
		t.Errorf("h_refcount %d, want 2", rc)
	}
}

// An entry refused for want of an inode takes no block: neither its xattr
// block nor a long symlink's target block is left allocated without owner.
func TestNoInodeTakesNoBlock(t *testing.T) {
	p := testParams(16<<20, 100) // 112 inodes: 11 reserved, 101 for files
	f, path := newImage(t, p)
	defer f.Close()
	w, err := NewWriter(f, p)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("X"), 3000)
	for i := range 101 {
		e := withXattr(reg(fmt.Sprintf("f%03d", i), 0o644, nil), big)
		if err := w.Create(e.path, &e.file, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []entry{withXattr(symlinkEntry("long", strings.Repeat("t", 100)), big), withXattr(dir("d", 0o755), big)} {
		if err := w.Create(e.path, &e.file, nil); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("%s: %v, want no free inode", e.path, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fsck(t, path)
}
