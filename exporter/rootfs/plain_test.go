package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/hostile"
	"github.com/c2vm/c2vm/internal/ocitest"
	"golang.org/x/sys/unix"
)

// seqSink records every entry sent, in order, with a digest of its data.
type seqSink struct{ lines []string }

func (s *seqSink) Add(e *Entry, r io.Reader) error {
	sum := ""
	if r != nil {
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		sum = fmt.Sprintf("%d:%x", n, h.Sum(nil))
	}
	s.lines = append(s.lines, fmt.Sprintf("%q %v %o %d:%d %d size=%d data=%v link=%q dev=%d:%d xattrs=%q %s",
		e.Path, e.Kind, e.Mode, e.UID, e.GID, e.Mtime.UnixNano(), e.Size, e.Data, e.Link, e.DevMajor, e.DevMinor, e.Xattrs, sum))
	return nil
}

// samePasses streams layers as plain tar files (one parse, plain.go), with
// their headers parsed in one pass and in parts (scansplit.go), and once
// from memory (two parses), and fails unless all send the same entries in
// the same order with the same bytes, or all fail (the plain files with
// the same error).
func samePasses(t testing.TB, layers [][]byte, whiteouts bool) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, b := range layers {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	mem := memLayers(layers)
	mem.whiteouts = whiteouts
	want, wantErr := streamLines(mem)
	for _, sp := range []*splitting{nil, {parts: 2, hold: 1 << 30}, {parts: 4, hold: 1 << 30}, {parts: 3, hold: 3000}} {
		files := &layeredSource{desc: "files", whiteouts: whiteouts, split: sp}
		for _, p := range paths {
			files.layers = append(files.layers, Layer{Open: func() (io.ReadCloser, error) { return os.Open(p) }})
		}
		got, err := streamLines(files)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("plain files (%+v): %v; from memory: %v", sp, err, wantErr)
		}
		if sp == nil {
			wantErr = err // the plain files' error, for the split passes
		} else if err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("plain files in parts (%+v): %v; in one pass: %v", sp, err, wantErr)
		}
		if err != nil {
			continue
		}
		for i := range files.plain {
			if files.plain[i] == (fileID{}) {
				t.Fatalf("layer %d was not read as a plain file", i)
			}
		}
		if got != want {
			t.Fatalf("plain files (%+v) sent:\n%s\nfrom memory:\n%s", sp, got, want)
		}
	}
}

// streamLines scans and streams s and returns what it sent.
func streamLines(s *layeredSource) (string, error) {
	sink := &seqSink{}
	_, err := s.Scan(context.Background())
	if err == nil {
		err = s.Stream(context.Background(), sink)
	}
	return strings.Join(sink.lines, "\n"), err
}

// TestPlainTarOnePass: real archives from GNU tar with every kind of entry,
// each format, sparse files, xattrs and long names, send the same through
// the one-parse path as through the two-parse one.
func TestPlainTarOnePass(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("n", 150)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, long[:120], "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, long), pattern(70000), 0o640))
	must(os.WriteFile(filepath.Join(root, "small"), []byte("hi\n"), 0o4755))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o600))
	must(os.Link(filepath.Join(root, "small"), filepath.Join(root, "hard")))
	must(os.Symlink("small", filepath.Join(root, "sym")))
	must(os.Symlink(strings.Repeat("t/", 200)+"x", filepath.Join(root, "longsym")))
	must(exec.Command("mkfifo", filepath.Join(root, "fifo")).Run())
	sparse, err := os.Create(filepath.Join(root, "sparse"))
	must(err)
	sparse.WriteAt(pattern(5000), 1<<20)
	sparse.WriteAt(pattern(3), 9<<20)
	sparse.Close()
	xattrs := exec.Command("setfattr", "-n", "user.c2vm", "-v", "value", filepath.Join(root, "small")).Run() == nil
	if os.Geteuid() == 0 {
		must(exec.Command("mknod", filepath.Join(root, "null"), "c", "1", "3").Run())
	}
	when := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	ts := unix.NsecToTimespec(when.UnixNano())
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
	for _, format := range []string{"gnu", "pax", "posix", "oldgnu"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"-C", root, "-c", "-S", "--format", format, "."}
			if xattrs && format != "gnu" && format != "oldgnu" {
				args = append([]string{"--xattrs", "--xattrs-include=user.*"}, args...)
			}
			out, err := exec.Command("tar", args...).Output()
			if err != nil {
				t.Fatalf("tar %s: %v", args, err)
			}
			samePasses(t, [][]byte{out}, false)
		})
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestPlainTarCorpus: the hostile corpus, Go's archive/tar test files and
// headers archive/tar handles specially (global headers, huge PAX records
// on a directory, devices) send the same through both paths.
func TestPlainTarCorpus(t *testing.T) {
	for _, c := range hostile.Cases {
		var layers [][]byte
		if c.Base != nil {
			layers = append(layers, c.Base.Bytes())
		}
		t.Run(c.Name, func(t *testing.T) { samePasses(t, append(layers, c.Top.Bytes()), true) })
	}
	files, _ := filepath.Glob(filepath.Join(goTarTestdata(t), "*.tar"))
	if len(files) < 20 {
		t.Fatalf("archive/tar's test files: %d found", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { samePasses(t, [][]byte{b}, false) })
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": strings.Repeat("g", 700)}},
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o1777, PAXRecords: map[string]string{"SCHILY.xattr.user.big": strings.Repeat("x", 3000)}},
		{Name: "d/dev", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 1},
		{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "again"}},
		{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 513, Format: tar.FormatPAX, ModTime: time.Unix(1, 5)},
		{Name: "d/l", Typeflag: tar.TypeLink, Linkname: "d/f"},
		{Name: "d/s", Typeflag: tar.TypeSymlink, Linkname: "f", Size: 0},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(pattern(int(h.Size)))
		}
	}
	tw.Close()
	samePasses(t, [][]byte{buf.Bytes(), ocitest.NewTar().File("d/f", "replaced", 0o644).Bytes()}, true)

	// A global header is never a sparse file, whatever records it holds
	// (archive/tar looks for sparse maps on files only); here its data
	// does not fill its last block. What follows reads the same both ways.
	g := ocitest.PAXText(map[string]string{"GNU.sparse.map": "0,0", "GNU.sparse.size": "0", "comment": "c2vm"})
	withG := ocitest.NewTar().Raw("g", 'g', "", g).
		Entry(tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 3}, "").
		Entry(tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}, "abc").
		Bytes()
	if len(g)%512 == 0 {
		t.Fatal("the global header's data fills its blocks")
	}
	samePasses(t, [][]byte{withG}, true)
	src := memLayers([][]byte{withG})
	inv, sink, err := streamAll(t, src)
	if err != nil || inv.Entries != 3 || sink.entries["dev"] == nil || sink.data["x"] != "abc" {
		t.Fatalf("after a global header with sparse records: %v, %+v", err, sink)
	}
}

// A plain tar that changes between the two passes is refused, never
// streamed from the wrong offsets: grown, or edited in place at the same
// size with its modification time put back.
func TestPlainTarChanged(t *testing.T) {
	for _, same := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "root.tar")
		write := func(body string) {
			if err := os.WriteFile(p, ocitest.NewTar().File("a", body, 0o644).File("b", "bee", 0o644).Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("first")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		src, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if same {
			write("fixed")
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		} else {
			write(strings.Repeat("longer ", 200))
		}
		err = src.Stream(context.Background(), &seqSink{})
		if err == nil || !strings.Contains(err.Error(), "changed between the two passes") {
			t.Fatalf("same size %v: want a changed-layer error, got %v", same, err)
		}
	}
}
