package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type nullWriterAt struct{}

func (nullWriterAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func newTestWriter(t *testing.T, size, inodes int64) *Writer {
	t.Helper()
	w, err := NewWriter(nullWriterAt{}, testParams(size, inodes))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() }) // stops the writing goroutine
	return w
}

func TestValidation(t *testing.T) {
	w := newTestWriter(t, 64<<20, 1000)
	ok := func(p string, f File, data []byte) {
		t.Helper()
		if err := w.Create(p, &f, bytes.NewReader(data)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	ok("d", File{Mode: sIFDIR | 0o755}, nil)
	ok("d/f", File{Mode: sIFREG | 0o644, Size: 1}, []byte("x"))
	bad := []struct {
		path string
		f    File
		want string
	}{
		{"/abs", File{Mode: sIFREG}, "empty name"},
		{"d/", File{Mode: sIFREG}, "empty name"},
		{"a//b", File{Mode: sIFREG}, "empty name"},
		{"d/./x", File{Mode: sIFREG}, `name "."`},
		{"..", File{Mode: sIFDIR}, `name ".."`},
		{strings.Repeat("n", 256), File{Mode: sIFREG}, "256 bytes"},
		{"nul\x00", File{Mode: sIFREG}, "NUL"},
		{"missing/x", File{Mode: sIFREG}, "does not exist"},
		{"d/f/x", File{Mode: sIFREG}, "not a directory"},
		{"d/f", File{Mode: sIFREG}, "path exists"},
		{"d/f", File{Mode: sIFDIR}, "path exists"},
		{"d", File{Mode: sIFREG}, "path exists"},
		{"lost+found", File{Mode: sIFREG}, "path exists"},
		{"", File{Mode: sIFREG}, "root must be a directory"},
		{"sock", File{Mode: sIFSOCK | 0o755}, "sockets"},
		{"weird", File{Mode: 0o644}, "unsupported mode"},
		{"big", File{Mode: sIFREG, Size: maxFileSize + 1}, "beyond ext4's limit"},
		{"segs", File{Mode: sIFREG, Size: 10, Data: []Segment{{5, 2}, {4, 1}}}, "out of order"},
		{"segs2", File{Mode: sIFREG, Size: 10, Data: []Segment{{5, 6}}}, "outside the size"},
		{"nodata", File{Mode: sIFREG, Size: 10}, "no data reader"},
		{"dev", File{Mode: sIFCHR, DevMajor: 4096}, "12-bit major"},
		{"link", File{Mode: sIFLNK | 0o777}, "empty symlink"},
		{"link", File{Mode: sIFLNK | 0o777, Linkname: strings.Repeat("l", 4096)}, "4096 bytes"},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"foo.bar", nil}}}, `xattr "foo.bar": unknown namespace`},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"user.", nil}}}, "empty name"},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"user.a", nil}, {"user.a", nil}}}, "twice"},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"user.a", make([]byte, 4100)}}}, `xattr "user.a" (4100 bytes): no room`},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"system.posix_acl_access", []byte{1, 0, 0, 0}}}}, "VFS xattr format"},
		{"x", File{Mode: sIFREG, Xattrs: []Xattr{{"system.posix_acl_default", vfsACL([3]uint32{aclUserObj, 7, 0})}}}, "non-directory"},
	}
	for _, c := range bad {
		var r io.Reader
		if c.f.Size == 0 {
			r = bytes.NewReader(nil)
		}
		err := w.Create(c.path, &c.f, r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%q): %v, want %q", c.path, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", c.path)) {
			t.Errorf("Create(%q): error does not name the path: %v", c.path, err)
		}
	}
	for _, c := range []struct{ path, target, want string }{
		{"l", "d", "directory"},
		{"l", "nope", "does not exist"},
		{"d/f", "d/f", "path exists"},
		{"", "d/f", "bad path"},
	} {
		if err := w.Link(c.path, c.target); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Link(%q, %q): %v, want %q", c.path, c.target, err, c.want)
		}
	}
	// Rejected entries leave the writer usable.
	ok("d/g", File{Mode: sIFREG | 0o644}, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

func TestParamsValidation(t *testing.T) {
	for _, c := range []struct {
		p    Params
		want string
	}{
		{Params{Offset: 100, Size: 64 << 20}, "multiple of 4096"},
		{Params{Size: 64 << 20, Label: strings.Repeat("l", 17)}, "longer than 16"},
		{Params{Size: 1 << 16}, "too small"},
		{Params{Size: 64 << 20, Inodes: 1 << 40}, "2^32-1"},
		{Params{Size: 32 << 40}, "over 16 TiB"},
		{Params{Size: 64 << 20, Inodes: 3 << 20}, "do not fit"},
	} {
		if _, err := NewWriter(nullWriterAt{}, c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
}

func TestNoSpace(t *testing.T) {
	// Blocks: a 20 MiB file in a 16 MiB filesystem.
	w := newTestWriter(t, 16<<20, 100)
	err := w.Create("f", &File{Mode: sIFREG | 0o644, Size: 20 << 20}, io.LimitReader(zeroReader{}, 20<<20))
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "needs 5120 blocks") {
		t.Errorf("big file: %v", err)
	}
	// The rejected file took nothing: a small one still fits.
	if err := w.Create("g", &File{Mode: sIFREG | 0o644, Size: 1}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// Inodes: 16 in all, 11 reserved, 1 used by g.
	w = newTestWriter(t, 16<<20, 16)
	var last error
	for i := range 10 {
		last = w.Create(string(rune('a'+i)), &File{Mode: sIFREG | 0o644}, nil)
		if last != nil {
			if i != 5 {
				t.Errorf("ran out at entry %d", i)
			}
			break
		}
	}
	if !errors.Is(last, ErrNoSpace) || !strings.Contains(last.Error(), "all 16 in use") {
		t.Errorf("inodes: %v", last)
	}
	// Directory blocks at Close: fill the data, then need more.
	w = newTestWriter(t, 16<<20, 2000)
	free := int64(w.alloc.free())
	if err := w.Create("f", &File{Mode: sIFREG | 0o644, Size: free * blockSize}, io.LimitReader(zeroReader{}, free*blockSize)); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := w.Create(strings.Repeat("n", 200)+string(rune('0'+i%10))+string(rune('a'+i/10%26))+string(rune('A'+i/260)), &File{Mode: sIFREG}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("Close: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestShortData(t *testing.T) {
	w := newTestWriter(t, 16<<20, 100)
	err := w.Create("f", &File{Mode: sIFREG | 0o644, Size: 10000}, strings.NewReader("short"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short data: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a data error succeeded")
	}
}
