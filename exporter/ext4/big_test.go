package ext4

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// prng is a fast deterministic byte stream (xorshift64*), for big files.
type prng struct{ s uint64 }

func (p *prng) Read(b []byte) (int, error) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		p.s ^= p.s >> 12
		p.s ^= p.s << 25
		p.s ^= p.s >> 27
		binary.LittleEndian.PutUint64(b[i:], p.s*2685821657736338717)
	}
	for ; i < len(b); i++ {
		p.s = p.s*6364136223846793005 + 1
		b[i] = byte(p.s >> 56)
	}
	return len(b), nil
}

func TestBigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 700 MiB")
	}
	const size = 700<<20 + 1234
	e := entry{path: "big", file: File{Mode: sIFREG | 0o644, Size: size, Mtime: testTime},
		reader: io.LimitReader(&prng{s: 42}, size)}
	p := testParams(1<<30, 100)
	img := build(t, p, []entry{reg("before", 0o644, []byte("b")), e, reg("after", 0o644, []byte("a"))})
	fsck(t, img)
	ex := debugfs(t, img, "ex /big")
	// 32768-block extents, split where group metadata sits (group 1's
	// backup superblock at 32768), more than four: an index block.
	if n := strings.Count(ex, " 1/ 1 "); n < 6 {
		t.Errorf("%d extents:\n%s", n, ex)
	}
	mustContain(t, "big extents", ex, " 0/ 1 ", "32768")
	out := filepath.Join(t.TempDir(), "big.out")
	debugfs(t, img, "dump /big "+out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h1, h2 := sha256.New(), sha256.New()
	io.Copy(h1, f)
	io.Copy(h2, io.LimitReader(&prng{s: 42}, size))
	if fmt.Sprintf("%x", h1.Sum(nil)) != fmt.Sprintf("%x", h2.Sum(nil)) {
		t.Errorf("content differs")
	}
	mustContain(t, "after", debugfs(t, img, "cat /after"), "a")
}

func TestSparse4GiB(t *testing.T) {
	const size = 4 << 30
	segs := []Segment{{0, 10}, {1<<30 + 5, 8000}, {3 << 30, 64 << 10}, {size - 10, 10}}
	var data []byte
	for i, s := range segs {
		data = append(data, pattern(int(s.Len), uint64(i+10))...)
	}
	e := entry{path: "sparse", file: File{Mode: sIFREG | 0o644, Size: size, Data: segs, Mtime: testTime}, data: data}
	img := build(t, testParams(64<<20, 100), []entry{e})
	fsck(t, img)
	// 1 + 2 + 16 + 1 blocks.
	mustContain(t, "stat", debugfs(t, img, "stat /sparse"), "Size: 4294967296", fmt.Sprintf("Blockcount: %d", 20*8))
	mustContain(t, "extents", debugfs(t, img, "ex /sparse"), " 0 -       0 ", "262144 -  262145", "786432 -  786447", "1048575 - 1048575")
	// Read the data back block by block.
	off := 0
	for i, s := range segs {
		want := data[off : off+int(s.Len)]
		off += int(s.Len)
		got := readRange(t, img, "/sparse", s.Off, s.Len)
		if string(got) != string(want) {
			t.Errorf("segment %d differs", i)
		}
	}
}

// readRange reads a file's bytes with debugfs block_dump, one block at a
// time (its hex dump is parsed back).
func readRange(t *testing.T, img, path string, off, n int64) []byte {
	var out []byte
	for blk := off / blockSize; blk*blockSize < off+n; blk++ {
		b := blockDump(t, img, path, blk)
		lo := max(off, blk*blockSize) - blk*blockSize
		hi := min(off+n, (blk+1)*blockSize) - blk*blockSize
		out = append(out, b[lo:hi]...)
	}
	return out
}

func blockDump(t *testing.T, img, path string, lblk int64) []byte {
	cmd := exec.Command(tool(t, "debugfs"), "-R", fmt.Sprintf("bd -f %s %d", path, lblk), img)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, blockSize)
	// Lines: "0020  xxxx xxxx ...  text"; "*" repeats the previous line.
	var prev []byte
	next := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if l == "*" {
			continue
		}
		var addr int
		if _, err := fmt.Sscanf(l, "%o", &addr); err != nil || len(l) < 8 {
			continue
		}
		for ; prev != nil && next < addr; next += 16 {
			copy(b[next:], prev)
		}
		hex := strings.Fields(l[6:min(len(l), 6+40)])
		line := make([]byte, 0, 16)
		for _, h := range hex {
			var v uint16
			fmt.Sscanf(h, "%04x", &v)
			line = append(line, byte(v>>8), byte(v))
		}
		copy(b[addr:], line)
		prev, next = line, addr+16
	}
	for ; prev != nil && next < blockSize; next += 16 {
		copy(b[next:], prev)
	}
	return b
}

// A 40,000-entry tree stays well under 150 MiB: per inode a small struct,
// file data never buffered beyond the 3 MiB of output buffers.
func TestMemory40k(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	runtime.GC()
	w, err := NewWriter(nullWriterAt{}, testParams(8<<30, 60000))
	if err != nil {
		t.Fatal(err)
	}
	caps := []Xattr{{"security.capability", make([]byte, 20)}}
	for d := range 400 {
		dp := fmt.Sprintf("usr/share/dir-%03d", d)
		if d == 0 {
			w.Create("usr", &File{Mode: sIFDIR | 0o755}, nil)
			w.Create("usr/share", &File{Mode: sIFDIR | 0o755}, nil)
		}
		if err := w.Create(dp, &File{Mode: sIFDIR | 0o755}, nil); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			size := int64(f * 500)
			err := w.Create(fmt.Sprintf("%s/some-longish-file-name-%03d.txt", dp, f),
				&File{Mode: sIFREG | 0o644, Size: size, Xattrs: caps}, io.LimitReader(&prng{s: 1}, size))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("40,400 entries: heap sys %d MiB, total from the OS %d MiB", ms.HeapSys>>20, ms.Sys>>20)
	if ms.Sys > 150<<20 {
		t.Errorf("memory %d MiB", ms.Sys>>20)
	}
}

// Past 65000 subdirectories a directory's link count is 1 (dir_nlink).
func TestManySubdirs(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	es := []entry{dir("d", 0o755)}
	for i := range 65001 {
		es = append(es, dir(fmt.Sprintf("d/%d", i), 0o755))
	}
	img := build(t, testParams(1<<30, 70000), es)
	fsck(t, img)
	mustContain(t, "d", debugfs(t, img, "stat /d"), "Links: 1")
}
