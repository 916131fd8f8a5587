package ext4

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"
)

// synthTree is the benchmark's tree: 100 directories of 100 files, 600 MiB
// in all: 9,900 small files (4–16 KiB) and 100 of 5 MiB.
type synthFile struct {
	path string
	size int64
}

func synthTree() (dirs []string, files []synthFile, total int64) {
	r := prng{s: 99}
	var b [8]byte
	for d := range 100 {
		dirs = append(dirs, fmt.Sprintf("d%03d", d))
		for f := range 100 {
			size := int64(5 << 20)
			if f != 0 {
				r.Read(b[:])
				size = 4096 + int64(b[0])<<4 + int64(b[1])<<6
			}
			files = append(files, synthFile{fmt.Sprintf("d%03d/f%03d", d, f), size})
			total += size
		}
	}
	return dirs, files, total
}

var benchPool = func() []byte {
	b := make([]byte, 8<<20)
	(&prng{s: 5}).Read(b)
	return b
}()

// BenchmarkWrite writes the synthetic tree from memory into an image file
// and syncs it: the writer's own cost plus the kernel's writeback.
func BenchmarkWrite(b *testing.B) {
	dirs, files, total := synthTree()
	path := filepath.Join(b.TempDir(), "fs.img")
	b.SetBytes(total)
	for b.Loop() {
		os.Remove(path)
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Truncate(1 << 30)
		w, err := NewWriter(f, testParams(1<<30, 20000))
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range dirs {
			if err := w.Create(d, &File{Mode: sIFDIR | 0o755}, nil); err != nil {
				b.Fatal(err)
			}
		}
		for i, sf := range files {
			off := int64(i*4096) % int64(len(benchPool)-int(sf.size)+1)
			r := bytes.NewReader(benchPool[off : off+sf.size])
			if err := w.Create(sf.path, &File{Mode: sIFREG | 0o644, Size: sf.size}, r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(w.out.writes), "writes/op")
		f.Sync()
		f.Close()
	}
}

// TestFloorRatio compares the writer with the floor the project measures
// against: tar -cf of the same tree on disk, then sync. The tree is the
// synthetic one (about 2 GiB of disk) or C2VM_BENCH_TREE. Run with
// C2VM_BENCH_FLOOR=1.
func TestFloorRatio(t *testing.T) {
	if os.Getenv("C2VM_BENCH_FLOOR") != "1" {
		t.Skip("set C2VM_BENCH_FLOOR=1")
	}
	tarPath := tool(t, "tar")
	base := t.TempDir()
	tree := os.Getenv("C2VM_BENCH_TREE")
	if tree == "" {
		tree = filepath.Join(base, "tree")
		makeSynthTree(t, tree)
	}
	exec.Command("sync").Run()
	floor := func() time.Duration {
		out := filepath.Join(base, "tree.tar")
		os.Remove(out)
		start := time.Now()
		if o, err := exec.Command(tarPath, "-cf", out, "-C", tree, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, o)
		}
		if err := exec.Command("sync", out).Run(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	ours := func() time.Duration {
		out := filepath.Join(base, "fs.img")
		os.Remove(out)
		start := time.Now()
		writeTreeFromDisk(t, tree, out)
		return time.Since(start)
	}
	var fl, ou []time.Duration
	for i := range 5 {
		if i%2 == 0 {
			fl, ou = append(fl, floor()), append(ou, ours())
		} else {
			ou, fl = append(ou, ours()), append(fl, floor())
		}
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	t.Logf("%s: floor (tar -cf + sync) %v, writer + sync %v: ratio %.2f (runs: floor %v, writer %v)",
		tree, med(fl), med(ou), float64(med(ou))/float64(med(fl)), fl, ou)
}

// writeTreeFromDisk writes a directory tree into an ext4 image and syncs,
// reading files as the exporter would.
func writeTreeFromDisk(t *testing.T, tree, out string) {
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(1 << 30)
	w, err := NewWriter(f, testParams(1<<30, 20000))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTree(w, tree); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	t.Logf("sync: %v", time.Since(written))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("writes: %d, %d MiB; heap in use %d MiB, sys %d MiB", w.out.writes, w.out.written>>20, ms.HeapInuse>>20, ms.Sys>>20)
}

func makeSynthTree(t *testing.T, tree string) {
	dirs, files, _ := synthTree()
	for _, d := range dirs {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	for i, sf := range files {
		off := int64(i*4096) % int64(len(benchPool)-int(sf.size)+1)
		if err := os.WriteFile(filepath.Join(tree, sf.path), benchPool[off:off+sf.size], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
