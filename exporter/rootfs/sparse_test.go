package rootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// readAll reads every entry with tarReader and rebuilds each regular file's
// logical content from its segments (bounded: large holes are not built).
func readAll(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	tr := newTarReader(r)
	out := map[string][]byte{}
	for {
		h, segs, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if segs == nil {
			out[h.Name] = data
			continue
		}
		if h.Size > 1<<27 {
			out[h.Name] = data // only the data for big sparse files
			continue
		}
		full := make([]byte, h.Size)
		for _, s := range segs {
			copy(full[s.Off:], data[:s.Len])
			data = data[s.Len:]
		}
		out[h.Name] = full
	}
}

// goRead is what archive/tar itself reads: the logical content, holes as zeros.
func goRead(t *testing.T, r io.Reader) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range ocitest.ReadTar(t, r) {
		out[m.Header.Name] = m.Data
	}
	return out
}

func TestSparseFormatsMatchArchiveTar(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(goTarTestdata(t), "sparse-formats.tar"))
	if err != nil {
		t.Fatal(err)
	}
	got, want := readAll(t, bytes.NewReader(b)), goRead(t, bytes.NewReader(b))
	if len(got) != len(want) || len(got) < 5 {
		t.Fatalf("%d entries, archive/tar %d", len(got), len(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Errorf("%s differs from archive/tar's reading", name)
		}
	}
}

// GNU tar's own sparse encodings of a file with holes at the start, middle
// and end, through a pipe (no seeking) and from a file.
func TestGNUTarSparseVersions(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "sparse"))
	for _, off := range []int64{1 << 20, 5<<20 + 100, 9 << 20} {
		f.WriteAt(bytes.Repeat([]byte{byte(off >> 20)}, 70000), off)
	}
	f.Truncate(64 << 20)
	f.Close()
	os.WriteFile(filepath.Join(dir, "plain"), []byte("plain file"), 0o644)
	os.WriteFile(filepath.Join(dir, "plain2"), []byte("plain file"), 0o644)
	orig, _ := os.ReadFile(filepath.Join(dir, "sparse"))
	for _, args := range [][]string{{"--format=gnu"}, {"--format=posix", "--sparse-version=0.0"},
		{"--format=posix", "--sparse-version=0.1"}, {"--format=posix", "--sparse-version=1.0"}} {
		out := filepath.Join(t.TempDir(), "t.tar")
		cmd := exec.Command("tar", append(append([]string{"-S", "-cf", out, "-C", dir}, args...), "plain", "sparse", "plain2")...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, b)
		}
		fi, _ := os.Stat(out)
		if fi.Size() > 4<<20 {
			t.Fatalf("%v: tar did not write a sparse entry (%d bytes)", args, fi.Size())
		}
		b, _ := os.ReadFile(out)
		for _, r := range []io.Reader{bytes.NewReader(b), struct{ io.Reader }{bytes.NewReader(b)}} {
			got := readAll(t, r)
			if !bytes.Equal(got["sparse"], orig) || string(got["plain"]) != "plain file" || string(got["plain2"]) != "plain file" {
				t.Errorf("%v: content differs (sparse %d bytes)", args, len(got["sparse"]))
			}
		}
		segs := segmentsOf(t, b, "sparse")
		var data int64
		for _, s := range segs {
			data += s.Len
		}
		if len(segs) < 3 || data > 1<<20 {
			t.Errorf("%v: holes lost: %v", args, segs)
		}
	}
}

func segmentsOf(t *testing.T, b []byte, name string) []Segment {
	tr := newTarReader(bytes.NewReader(b))
	for {
		h, segs, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not found: %v", name, err)
		}
		if h.Name == name {
			return segs
		}
	}
}

// Huge declared holes cost nothing: the 60 GB files of archive/tar's
// testdata are read in well under a second.
func TestSparseBigIsFast(t *testing.T) {
	for _, f := range []string{"gnu-sparse-big.tar.base64", "pax-sparse-big.tar.base64"} {
		b64, err := os.ReadFile(filepath.Join(goTarTestdata(t), f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tr := newTarReader(bytes.NewReader(b))
		h, segs, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		n, err := io.Copy(sum, tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size < 1<<30 || len(segs) == 0 || n > 1<<20 || time.Since(start) > 5*time.Second {
			t.Errorf("%s: size %d, %d segments, %d data bytes in %s", h.Name, h.Size, len(segs), n, time.Since(start))
		}
	}
}
