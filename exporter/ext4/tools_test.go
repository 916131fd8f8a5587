package ext4

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The host's e2fsprogs are the independent checkers. Missing tools skip
// the test, unless C2VM_REQUIRE_TOOLS=1.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + name); serr == nil {
			return "/usr/sbin/" + name
		}
		if os.Getenv("C2VM_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not installed (C2VM_REQUIRE_TOOLS=1)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

var fsckOK = []*regexp.Regexp{
	regexp.MustCompile(`^e2fsck \d+\.\d+(\.\d+)? \(.*\)$`),
	regexp.MustCompile(`^Pass [1-5]: `),
	regexp.MustCompile(`^\S+: \d+/\d+ files \(.*\), \d+/\d+ blocks$`),
}

// fsck runs e2fsck -fn and fails on any exit status or message beyond the
// version, pass and summary lines.
func fsck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command(tool(t, "e2fsck"), "-fn", img).CombinedOutput()
	var extra []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ok := false
		for _, re := range fsckOK {
			ok = ok || re.MatchString(l)
		}
		if !ok {
			extra = append(extra, l)
		}
	}
	if err != nil || len(extra) > 0 {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// debugfs runs one request and returns its output without the banner.
func debugfs(t testing.TB, img, req string) string {
	t.Helper()
	out, err := exec.Command(tool(t, "debugfs"), "-R", req, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, out)
	}
	s := string(out)
	if strings.HasPrefix(s, "debugfs ") {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

func dumpe2fsHeader(t testing.TB, img string) string {
	t.Helper()
	out, err := exec.Command(tool(t, "dumpe2fs"), "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h: %v\n%s", err, out)
	}
	return string(out)
}

func mustContain(t testing.TB, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: want %q in:\n%s", what, w, got)
		}
	}
}

// entry is a test entry: a path, metadata, and data for regular files.
type entry struct {
	path   string
	file   File
	data   []byte // the segments' bytes concatenated
	link   string // hardlink target
	reader io.Reader
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func testParams(size, inodes int64) Params {
	return Params{
		Size: size, Inodes: inodes, Label: "root",
		UUID:     [16]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01},
		HashSeed: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Time:     testTime,
	}
}

// build writes entries into a fresh sparse image of p.Offset+p.Size bytes
// and returns its path (with ?offset= when the offset is not zero).
func build(t testing.TB, p Params, entries []entry) string {
	t.Helper()
	img, err := buildErr(t, p, entries)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func buildErr(t testing.TB, p Params, entries []entry) (string, error) {
	t.Helper()
	f, path := newImage(t, p)
	defer f.Close()
	if err := writeEntries(f, p, entries); err != nil {
		return "", err
	}
	if p.Offset != 0 {
		return fmt.Sprintf("%s?offset=%d", path, p.Offset), nil
	}
	return path, nil
}

// newImage makes a fresh sparse image of p.Offset+p.Size bytes.
func newImage(t testing.TB, p Params) (*os.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(p.Offset + p.Size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return f, path
}

func writeEntries(f io.WriterAt, p Params, entries []entry) error {
	w, err := NewWriter(f, p)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if e.link != "" {
			err = w.Link(e.path, e.link)
		} else {
			r := e.reader
			if r == nil && e.data != nil {
				r = bytes.NewReader(e.data)
			}
			err = w.Create(e.path, &e.file, r)
		}
		if err != nil {
			return err
		}
	}
	return w.Close()
}

func dir(p string, mode uint32) entry {
	return entry{path: p, file: File{Mode: sIFDIR | mode, Mtime: testTime}}
}

func reg(p string, mode uint32, data []byte) entry {
	return entry{path: p, file: File{Mode: sIFREG | mode, Size: int64(len(data)), Mtime: testTime}, data: data}
}

func symlinkEntry(p, target string) entry {
	return entry{path: p, file: File{Mode: sIFLNK | 0o777, Linkname: target, Mtime: testTime}}
}
