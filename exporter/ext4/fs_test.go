package ext4

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFeatures(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := testParams(300<<20+12345, 5000)
	f.Truncate(p.Size)
	w, err := NewWriter(f, p)
	if err != nil {
		t.Fatal(err)
	}
	w.SetUUID([16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fsck(t, path)
	h := dumpe2fsHeader(t, path)
	m := regexp.MustCompile(`Filesystem features:\s+(.*)\n`).FindStringSubmatch(h)
	want := "has_journal ext_attr dir_index filetype extent 64bit flex_bg metadata_csum_seed sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"
	if m == nil || strings.TrimSpace(m[1]) != want {
		t.Errorf("features %q, want %q", m, want)
	}
	// dumpe2fs 1.47.0 separates this one with a tab.
	if !regexp.MustCompile(`Inode size:\s+256\n`).MatchString(h) {
		t.Errorf("inode size is not 256:\n%s", h)
	}
	mustContain(t, "dumpe2fs", h,
		"Filesystem volume name:   root",
		"Filesystem UUID:          deadbeef-0102-0304-0506-0708090a0b0c",
		"Filesystem flags:         signed_directory_hash",
		"Default mount options:    user_xattr acl",
		"Filesystem state:         clean",
		fmt.Sprintf("Block count:              %d", p.Size/blockSize),
		"Reserved block count:     0",
		"Required extra isize:     32",
		"Flex block group size:    16",
		"Default directory hash:   half_md4",
		"Directory Hash Seed:      01020304-0506-0708-090a-0b0c0d0e0f10",
		fmt.Sprintf("Checksum seed:            %#08x", crc32c(^uint32(0), p.UUID[:])),
		"Journal backup:           inode blocks",
		"Total journal blocks:     4096", // e2fsprogs' default for 128 MiB to 1 GiB
		"Journal start:            0",
		"Journal sequence:         0x00000001",
		"Filesystem created:       Mon May  6 07:08:09 2024")
	if c := regexp.MustCompile(`Inode count:\s+(\d+)`).FindStringSubmatch(h); c == nil || c[1] != "5040" {
		t.Errorf("inode count %v, want 5040 (5000 rounded up to whole inode table blocks in 3 groups)", c)
	}
	// The writer's own blocks: what e2fsck counts as used on an empty
	// filesystem is exactly the overhead MinSize assumes, less the slack.
	g, _ := newGeometry(uint64(p.Size/blockSize), uint64(p.Inodes))
	used := g.metaBlocks() + g.journal + lostFoundSize + 1
	mustContain(t, "usage", h, fmt.Sprintf("Free blocks:              %d", g.blocks-used))
}

// recorder checks that writes stay within the filesystem and counts them.
type recorder struct {
	f        *os.File
	lo, hi   int64
	min, max int64
	n        int
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	if off < r.lo || off+int64(len(p)) > r.hi {
		return 0, fmt.Errorf("write [%d, %d) outside [%d, %d)", off, off+int64(len(p)), r.lo, r.hi)
	}
	r.n++
	return r.f.WriteAt(p, off)
}

func TestReproducible(t *testing.T) {
	var sums []string
	for range 2 {
		path := filepath.Join(t.TempDir(), "disk.img")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		p := testParams(64<<20, 2000)
		p.Offset = 3 << 20
		f.Truncate(p.Offset + p.Size + 1<<20)
		r := &recorder{f: f, lo: p.Offset, hi: p.Offset + p.Size}
		if err := writeEntries(r, p, contentTree()); err != nil {
			t.Fatal(err)
		}
		f.Seek(0, 0)
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		sums = append(sums, fmt.Sprintf("%x", h.Sum(nil)))
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds differ: %s %s", sums[0], sums[1])
	}
}

func TestMinSize(t *testing.T) {
	es := contentTree()
	es = append(es, manyFiles("many", 3000, func(i int) string { return fmt.Sprintf("entry-%d", i) })...)
	es = append(es, reg("payload", 0o644, pattern(40<<20+3, 9)))
	inodes, content := account(t, es)
	size, err := MinSize(inodes, content)
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(size, inodes)
	img := build(t, p, es)
	fsck(t, img)
	g, _ := newGeometry(uint64(size/blockSize), uint64(inodes))
	if slack := g.capacity() - content; slack < 0 || slack >= 256+16 {
		t.Errorf("MinSize %d leaves %d blocks over the content", size, slack)
	}
	// Just below, the same content does not fit.
	if g, err := newGeometry(uint64(size-mib)/blockSize, uint64(inodes)); err == nil && g.capacity() >= content {
		t.Errorf("MinSize %d: 1 MiB less also holds %d blocks", size, content)
	}
	for _, c := range [][2]int64{{0, 0}, {1, 1}, {100000, 0}, {1 << 20, 1 << 20}, {1 << 24, 1 << 28}, {4e9, 1}} {
		s, err := MinSize(c[0], c[1])
		if err != nil {
			continue // e.g. more inodes than 16 TiB can hold
		}
		g, err := newGeometry(uint64(s/blockSize), uint64(c[0]))
		if err != nil || g.capacity() < c[1] || g.groups*g.ipg < uint64(c[0]) || s%mib != 0 {
			t.Errorf("MinSize(%d, %d) = %d: %+v %v", c[0], c[1], s, g, err)
		}
	}
	start := time.Now()
	for _, c := range [][2]int64{{1 << 40, 0}, {0, 1 << 40}, {-1, 0}, {1<<32 - 1, 1<<32 - 1}, {0, 1<<32 - 1}} {
		if _, err := MinSize(c[0], c[1]); err == nil {
			t.Errorf("MinSize(%d, %d): no error", c[0], c[1])
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("absurd MinSize calls took %v", d)
	}
}

// account counts inodes and content blocks the way a caller would.
func account(t *testing.T, es []entry) (int64, int64) {
	inodes, content := int64(firstIno), int64(0)
	type dstat struct{ n, bytes int64 }
	dirs := map[string]*dstat{"": {}}
	for _, e := range es {
		parent, name, _ := splitPath(e.path)
		if d := dirs[parent]; d != nil {
			d.n++
			d.bytes += int64(len(name))
		}
		if e.link != "" {
			continue
		}
		if _, ok := dirs[e.path]; !ok {
			inodes++
		}
		switch e.file.Mode & sIFMT {
		case sIFDIR:
			if dirs[e.path] == nil {
				dirs[e.path] = &dstat{}
			}
		case sIFREG:
			n, err := FileBlocks(e.file.Size, e.file.Data)
			if err != nil {
				t.Fatal(err)
			}
			content += n
		case sIFLNK:
			content += SymlinkBlocks(e.file.Linkname)
		}
		x, err := XattrBlocks(e.file.Xattrs, e.file.Mode&sIFMT == sIFDIR)
		if err != nil {
			t.Fatal(err)
		}
		content += x
	}
	for _, d := range dirs {
		content += DirBlocks(d.n, d.bytes)
	}
	return inodes, content
}

func TestNoSpaceAtMinSizeMinusOne(t *testing.T) {
	es := []entry{reg("payload", 0o644, pattern(30<<20, 1))}
	inodes, content := account(t, es)
	size, err := MinSize(inodes, content)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildErr(t, testParams(size-mib, inodes), es); !errors.Is(err, ErrNoSpace) {
		t.Errorf("1 MiB under MinSize: %v", err)
	}
	fsck(t, build(t, testParams(size, inodes), es))
}

// Growth at first boot: resize2fs (offline, like the kernel's online
// resize it needs no reserved GDT blocks) on a standalone copy, to 3×, and
// e2fsck stays clean.
func TestResize(t *testing.T) {
	img := build(t, testParams(100<<20, 3000), contentTree())
	fsck(t, img)
	resize(t, img, 300<<20)
}

func resize(t *testing.T, img string, size int64) {
	t.Helper()
	out, err := exec.Command(tool(t, "resize2fs"), img, fmt.Sprintf("%dK", size>>10)).CombinedOutput()
	if err != nil {
		t.Fatalf("resize2fs: %v\n%s", err, out)
	}
	fsck(t, img)
	mustContain(t, "resized", dumpe2fsHeader(t, img), fmt.Sprintf("Block count:              %d", size/blockSize))
}

func TestResizeBeyondDescriptorBlock(t *testing.T) {
	// 8 groups grow to 96: the descriptors need a second block, which
	// resize2fs makes room for by moving blocks.
	img := build(t, testParams(1<<30, 20000), contentTree())
	resize(t, img, 12<<30)
}

// Sizes whose last group is tiny: kept when it holds its own metadata and a
// free block, left out otherwise.
func TestTailGroup(t *testing.T) {
	for _, c := range []struct{ blocks, want int64 }{
		{blocksPerGroup + 2, blocksPerGroup},         // group 1's backup alone fills it: dropped
		{blocksPerGroup + 3, blocksPerGroup + 3},     // one block to spare: kept
		{16*blocksPerGroup + 3, 16 * blocksPerGroup}, // group 16 starts a flex: bitmaps and table (3 blocks) leave none free
		{16*blocksPerGroup + 100, 16*blocksPerGroup + 100},
		{3*blocksPerGroup + 7, 3*blocksPerGroup + 7},
	} {
		img := build(t, testParams(c.blocks*blockSize, 256), []entry{reg("f", 0o644, []byte("x"))})
		fsck(t, img)
		mustContain(t, fmt.Sprint(c.blocks), dumpe2fsHeader(t, img), fmt.Sprintf("Block count:              %d\n", c.want))
	}
}

// Zeros inside dense data are allocated but not written: the image stays
// sparse.
func TestDenseZerosStaySparse(t *testing.T) {
	data := make([]byte, 8<<20)
	copy(data[3<<20:], "middle")
	img := build(t, testParams(64<<20, 100), []entry{reg("zeros", 0o644, data)})
	fsck(t, img)
	mustContain(t, "zeros", debugfs(t, img, "stat /zeros"), fmt.Sprintf("Blockcount: %d", 8<<20/512))
	if got := debugfs(t, img, "cat /zeros"); got != string(data) {
		t.Error("content differs")
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 1<<20 {
		t.Errorf("image uses %d bytes on disk", used)
	}
}

// At the densest inode ratio a flex group's inode tables fill more than a
// group and step over group 1's superblock backup.
func TestDenseInodes(t *testing.T) {
	img := build(t, testParams(16*blocksPerGroup*blockSize, 16*blocksPerGroup), contentTree())
	fsck(t, img)
	resize(t, img, 20*blocksPerGroup*blockSize)
}

// The first 1024 bytes of the filesystem (a boot sector's place) are left
// alone.
func TestBootSectorUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := testParams(32<<20, 100)
	p.Offset = 1 << 20
	f.Truncate(p.Offset + p.Size)
	mark := []byte(strings.Repeat("\xaa", 1024))
	f.WriteAt(mark, p.Offset)
	if err := writeEntries(f, p, nil); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1024)
	f.ReadAt(got, p.Offset)
	if string(got) != string(mark) {
		t.Error("bytes before the superblock changed")
	}
	fsck(t, fmt.Sprintf("%s?offset=%d", path, p.Offset))
}
