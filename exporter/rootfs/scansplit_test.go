package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
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
)

// scanRecord is what a headers-only pass hands to Scan, one line per entry.
type scanRecord struct{ lines []string }

func (r *scanRecord) fn(ord int32, at entryAt, h *tar.Header, segs []Segment, _ io.Reader) error {
	r.lines = append(r.lines, fmt.Sprintf("%d %d/%d %q %c %o %d:%d %d %d %q %d:%d %v %v", ord, at.hdr, at.data,
		h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UnixNano(), h.Size, h.Linkname, h.Devmajor, h.Devminor, h.PAXRecords, segs))
	return nil
}

// splitArchive is a plain tar with what makes a part's start hard to
// guess: PAX headers before their entries, a GNU long name, sparse files,
// a file whose content is a tar archive, a global header and padding at
// the end.
func splitArchive(t *testing.T) []byte {
	t.Helper()
	inner := ocitest.NewTar().File("inner/a", strings.Repeat("i", 700), 0o644).File("inner/b", "b", 0o644).Bytes()
	// Headers in file data that a parse started there follows past the
	// next real header: "a" holds x, whose size leads into "b"'s data, to
	// y, followed by an end of archive.
	junk := strings.Repeat("j", 512)
	x, y := headerBlock(t, "x", 1536), headerBlock(t, "y", 0)
	zeros := string(make([]byte, 1024))
	b := ocitest.NewTar().File("a", x+junk, 0o644).File("b", junk+y+zeros+junk, 0o644).Dir("d", 0o755).
		Entry(tar.Header{Name: "d/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}, "abc").
		Entry(tar.Header{Name: "d/" + strings.Repeat("n", 150), Typeflag: tar.TypeReg, Mode: 0o600, Size: 600, Format: tar.FormatGNU}, strings.Repeat("l", 600)).
		File("d/inner.tar", string(inner), 0o644).
		Raw("g", 'g', "", ocitest.PAXText(map[string]string{"comment": "c2vm"})).
		Entry(tar.Header{Name: "d/dev", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 3}, "").
		Link("d/hard", "d/x").
		Bytes()
	if _, err := exec.LookPath("tar"); err != nil {
		return b
	}
	// GNU tar's sparse files, in both its formats.
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("data"), 1<<20)
	f.WriteAt([]byte("more"), 3<<20)
	f.Close()
	for _, format := range []string{"gnu", "posix"} {
		out, err := exec.Command("tar", "-C", root, "-c", "-S", "--format", format, "sparse").Output()
		if err != nil {
			t.Fatal(err)
		}
		b = append(trimEnd(b), out...)
	}
	return b
}

// headerBlock is the header block of a regular file.
func headerBlock(t *testing.T, name string, size int64) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	return buf.String()[:512]
}

// trimEnd drops a tar's end-of-archive blocks so another can follow.
func trimEnd(b []byte) []byte {
	zero := make([]byte, 512)
	for len(b) >= 512 && string(b[len(b)-512:]) == string(zero) {
		b = b[:len(b)-512]
	}
	return b
}

// splitSource writes b as a plain file and returns a source of it, split
// never (parts are given to scanSplit directly), and the open file.
func splitSource(t *testing.T, b []byte) (*layeredSource, *os.File) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &layeredSource{desc: "tar", split: &splitting{parts: 1}, plain: make([]fileID, 1),
		layers: []Layer{{Open: func() (io.ReadCloser, error) { return os.Open(p) }}}}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return s, f
}

// A part may start at any block: on an entry's first header, on its second
// (after a PAX or long-name header), in file data, in a tar inside a file,
// in padding. Whatever the starts, one part or two, and however little a
// part may hold, the pass gives what one pass in order gives; a part that
// starts on an entry's first header is used.
func TestScanSplitAnyStart(t *testing.T) {
	splitAnyStart(t, splitArchive(t))
}

// The sparse maps of the hostile corpus that hide a header where a search
// would find it, then an entry: split anywhere, the hidden entry is never
// taken, the entry after it is.
func TestScanSplitHiddenHeaders(t *testing.T) {
	for _, c := range hostile.Cases {
		if !strings.Contains(c.Name, "sparse") {
			continue
		}
		b := append(trimEnd(c.Top.Bytes()), ocitest.NewTar().File("z", "z", 0o644).Bytes()...)
		lines := splitAnyStart(t, b)
		if all := strings.Join(lines, "\n"); strings.Contains(all, "etc/smuggled") || !strings.Contains(all, `"z"`) {
			t.Errorf("%s:\n%s", c.Name, all)
		}
	}
}

// splitAnyStart checks that parts starting at each block of b, and at
// pairs of them, give what one pass gives, which it returns.
func splitAnyStart(t *testing.T, b []byte) []string {
	t.Helper()
	s, f := splitSource(t, b)
	var want scanRecord
	wantSum, err := s.forEach(context.Background(), 0, true, want.fn)
	if err != nil {
		t.Fatal(err)
	}
	// after[off] is how many entries start at off or later, when an
	// entry starts at off.
	after := map[int64]int{}
	for i, l := range want.lines {
		var ord int32
		var hdr int64
		fmt.Sscanf(l, "%d %d/", &ord, &hdr)
		after[hdr] = len(want.lines) - i
	}
	size := int64(len(b))
	run := func(hold int64, starts ...int64) {
		t.Helper()
		var parts []*part
		for i, st := range starts {
			end := size
			if i+1 < len(starts) {
				end = starts[i+1]
			}
			parts = append(parts, &part{start: st, end: end, ready: make(chan struct{})})
		}
		var got scanRecord
		sum, taken, err := s.scanSplit(context.Background(), 0, f, size, parts, hold, got.fn)
		if err != nil {
			t.Fatalf("parts at %v: %v", starts, err)
		}
		if g, w := strings.Join(got.lines, "\n"), strings.Join(want.lines, "\n"); g != w || string(sum) != string(wantSum) {
			t.Fatalf("parts at %v (hold %d) gave:\n%s\nwant:\n%s", starts, hold, g, w)
		}
		if n, ok := after[starts[0]]; ok && hold > 1<<20 && len(starts) == 1 && taken != n {
			t.Errorf("the part at %d, an entry's first header: %d entries taken from it, want %d", starts[0], taken, n)
		}
	}
	blocks := size / 512
	for i := int64(1); i < blocks; i++ {
		run(1<<30, i*512)
		run(1, i*512)
		for j := i + 1; j < blocks; j += 5 {
			run(1<<30, i*512, j*512)
			run(1, i*512, j*512)
		}
	}
	return want.lines
}

// A damaged archive gives the same error split as in one pass, whichever
// part meets the damage first.
func TestScanSplitSameError(t *testing.T) {
	b := splitArchive(t)
	bad := append([]byte{}, b...)
	// Break the checksum of the first header after the archive's middle.
	at, ok := findHeader(bytesReaderAt(bad), int64(len(bad)/2/512*512), int64(len(bad)))
	if !ok {
		t.Fatal("no header in the second half")
	}
	bad[at+148] ^= 1
	s, f := splitSource(t, bad)
	_, want := s.forEach(context.Background(), 0, true, (&scanRecord{}).fn)
	if want == nil {
		t.Fatal("the damaged archive scans")
	}
	for i := int64(1); i < int64(len(bad))/512; i++ {
		_, _, err := s.scanSplit(context.Background(), 0, f, int64(len(bad)), []*part{{start: i * 512, end: int64(len(bad)), ready: make(chan struct{})}}, 1<<30, (&scanRecord{}).fn)
		if err == nil || err.Error() != want.Error() {
			t.Fatalf("part at %d: %v, want %v", i*512, err, want)
		}
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// cut finds headers near even shares, and none in a file of zeros.
func TestCut(t *testing.T) {
	b := splitArchive(t)
	parts := cut(bytesReaderAt(b), int64(len(b)), 3)
	if len(parts) == 0 {
		t.Fatal("no part found")
	}
	for i, p := range parts {
		if !looksLikeHeader(b[p.start : p.start+512]) {
			t.Errorf("part %d starts at %d, not on a header", i, p.start)
		}
		if i > 0 && p.start <= parts[i-1].start || parts[i].end != int64(len(b)) && parts[i].end != parts[i+1].start {
			t.Errorf("parts out of order: %+v", parts)
		}
	}
	if parts := cut(bytesReaderAt(make([]byte, 1<<20)), 1<<20, 4); len(parts) != 0 {
		t.Errorf("parts in zeros: %d", len(parts))
	}
}

// Parts hold no more header bytes than they are given: of 40 entries with
// 900 KiB PAX records each, a part holding 2 MiB stops at the entry that
// takes it past 2 MiB, the third with records, whatever its share.
func TestScanSplitHoldsLittle(t *testing.T) {
	big := strings.Repeat("x", 900<<10)
	tr := ocitest.NewTar()
	for i := range 40 {
		tr.Entry(tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"comment": big}}, "")
	}
	s, f := splitSource(t, tr.Bytes())
	fi, _ := f.Stat()
	parts := cut(f, fi.Size(), 4)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var want scanRecord
	if _, err := s.forEach(context.Background(), 0, true, want.fn); err != nil {
		t.Fatal(err)
	}
	var got scanRecord
	_, taken, err := s.scanSplit(context.Background(), 0, f, fi.Size(), parts, 2<<20, got.fn)
	if err != nil || taken == 0 || strings.Join(got.lines, "\n") != strings.Join(want.lines, "\n") {
		t.Fatalf("%v, %d entries from parts, %d entries in all", err, taken, len(got.lines))
	}
	for i, p := range parts {
		var held int64
		for _, e := range p.entries[:len(p.entries)-1] {
			held += headerBytes(e.h, e.segs)
		}
		if len(p.entries) > 4 || held >= 2<<20 || held+headerBytes(p.entries[len(p.entries)-1].h, p.entries[len(p.entries)-1].segs) < 2<<20 {
			t.Errorf("part %d held %d entries, %d bytes before the last", i, len(p.entries), held)
		}
	}
}

// Sparse maps count against what a part holds: they may take far more
// memory than their entry's share of the file.
func TestScanSplitHoldsSparseMaps(t *testing.T) {
	// 20,000 one-byte segments: 160 KB of map text, 320 KB of segments.
	var m strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&m, "%d,1,", 2*i)
	}
	rec := map[string]string{"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": "s",
		"GNU.sparse.size": "40000", "GNU.sparse.numblocks": "20000", "GNU.sparse.map": strings.TrimSuffix(m.String(), ",")}
	tr := ocitest.NewTar()
	for i := range 20 {
		tr.RawPAX(fmt.Sprintf("GNUSparseFile.0/s%d", i), '0', "", 20000, rec, strings.Repeat("x", 20000))
	}
	b := tr.Bytes()
	s, f := splitSource(t, b)
	parts := cut(f, int64(len(b)), 2)
	if len(parts) != 1 {
		t.Fatalf("%d parts", len(parts))
	}
	var want, got scanRecord
	if _, err := s.forEach(context.Background(), 0, true, want.fn); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.scanSplit(context.Background(), 0, f, int64(len(b)), parts, 1<<20, got.fn); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.lines, "\n") != strings.Join(want.lines, "\n") {
		t.Fatal("split scan differs")
	}
	var held int
	for _, e := range parts[0].entries[:len(parts[0].entries)-1] {
		held += 16 * cap(e.segs)
	}
	if held >= 1<<20 || len(parts[0].entries) > 5 {
		t.Errorf("the part held %d entries, %d bytes of sparse maps before the last", len(parts[0].entries), held)
	}
}

// A cancelled scan stops, also while it waits for a part.
func TestScanSplitCancel(t *testing.T) {
	b := splitArchive(t)
	s, f := splitSource(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	parts := []*part{{start: 512, end: int64(len(b)), ready: make(chan struct{})}}
	if _, _, err := s.scanSplit(ctx, 0, f, int64(len(b)), parts, 1<<30, (&scanRecord{}).fn); err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
	// A part that never ends: the scan must not wait for it once cancelled.
	ctx, cancel = context.WithCancel(context.Background())
	sc := &splitScan{ctx: ctx, parts: []*part{{start: 0, ready: make(chan struct{})}}}
	done := make(chan error, 1)
	go func() {
		_, _, err := sc.meet(0)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("waiting for a part: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for a part 10 s after the scan was cancelled")
	}
}

// A part whose first guess runs far ahead (a header in file data declaring
// a huge size) does not keep the next part from being met.
func TestScanSplitWrongGuessRunsAhead(t *testing.T) {
	x := headerBlock(t, "x", 1<<32)
	tr := ocitest.NewTar().File("a", x, 0o644)
	for i := range 10 {
		tr.File(fmt.Sprintf("f%d", i), "data", 0o644)
	}
	b := tr.Bytes()
	s, f := splitSource(t, b)
	var want, got scanRecord
	if _, err := s.forEach(context.Background(), 0, true, want.fn); err != nil {
		t.Fatal(err)
	}
	// x lies in a's data, one block in; f5's header six entries of two
	// blocks after a's (two blocks of header and data).
	second := int64(2*512 + 5*1024)
	parts := []*part{{start: 512, end: second, ready: make(chan struct{})}, {start: second, end: int64(len(b)), ready: make(chan struct{})}}
	_, taken, err := s.scanSplit(context.Background(), 0, f, int64(len(b)), parts, 1<<30, got.fn)
	if err != nil || strings.Join(got.lines, "\n") != strings.Join(want.lines, "\n") {
		t.Fatalf("%v:\n%s\nwant:\n%s", err, strings.Join(got.lines, "\n"), strings.Join(want.lines, "\n"))
	}
	if taken != 5 {
		t.Errorf("%d entries taken from the parts, want 5 (f5 to f9)", taken)
	}
}
