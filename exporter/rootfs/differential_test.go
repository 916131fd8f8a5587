package rootfs

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/hostile"
)

// diffArchiveTar reads b with c2vm's tar reader and with archive/tar, in
// step, and describes the first difference: an entry (its whole header),
// its logical content (holes as zeros), or an error from one of them
// only. Contents over maxBytes are not compared; the headers after them
// still are.
func diffArchiveTar(b []byte, seekable bool, maxBytes int64) error {
	open := func() io.Reader {
		if seekable {
			return bytes.NewReader(b)
		}
		return struct{ io.Reader }{bytes.NewReader(b)}
	}
	g, c := tar.NewReader(open()), newTarReader(open())
	for i := 0; ; i++ {
		gh, gerr := g.Next()
		ch, segs, cerr := c.Next()
		if gerr != nil || cerr != nil {
			return sameEnd(i, g, gh, gerr, cerr, maxBytes)
		}
		if !reflect.DeepEqual(gh, ch) {
			return fmt.Errorf("entry %d: archive/tar reads %q (%c, %d bytes), c2vm %q (%c, %d bytes)", i, gh.Name, gh.Typeflag, gh.Size, ch.Name, ch.Typeflag, ch.Size)
		}
		if gh.Size > maxBytes {
			continue
		}
		gd, gerr := io.ReadAll(g)
		cd, cerr := logicalContent(c, ch.Size, segs)
		var bad badSegments
		switch {
		case errors.As(cerr, &bad):
			return fmt.Errorf("entry %d (%q): %v", i, gh.Name, cerr)
		case (gerr == nil) != (cerr == nil):
			return fmt.Errorf("entry %d (%q): reading it, archive/tar: %v, c2vm: %v", i, gh.Name, gerr, cerr)
		case gerr != nil:
			return nil
		case !bytes.Equal(gd, cd):
			return fmt.Errorf("entry %d (%q): content differs", i, gh.Name)
		}
	}
}

// sameEnd says whether the readers ended alike at entry i: both at the
// archive's end, or both with an error. c2vm refuses at the header a
// sparse file whose map and data disagree, where archive/tar fails when
// reading its content, and a file beyond ext4's limit, which archive/tar
// reads.
func sameEnd(i int, g *tar.Reader, gh *tar.Header, gerr, cerr error, maxBytes int64) error {
	gEOF, cEOF := errors.Is(gerr, io.EOF), errors.Is(cerr, io.EOF)
	switch {
	case gerr == nil && cerr != nil && !cEOF:
		if gh.Size > MaxFileBytes {
			return nil
		}
		if gh.Size > maxBytes {
			return nil // archive/tar's verdict would need its content read
		}
		if _, err := io.ReadAll(g); err != nil {
			return nil
		}
	case gEOF == cEOF && (gerr != nil) == (cerr != nil):
		return nil
	}
	return fmt.Errorf("entry %d: archive/tar: %v, c2vm: %v", i, gerr, cerr)
}

// badSegments is a map c2vm returned that its own checks should have
// refused: a bug, not a verdict on the input.
type badSegments struct{ error }

// logicalContent reads the current entry from c2vm's reader and places a
// sparse file's data at its segments.
func logicalContent(r io.Reader, size int64, segs []Segment) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil || segs == nil {
		return data, err
	}
	full := make([]byte, size)
	var end int64
	for _, s := range segs {
		if s.Off < end || s.Len <= 0 || s.Off > size-s.Len || s.Len > int64(len(data)) {
			return nil, badSegments{fmt.Errorf("segment %+v of a %d-byte file with %d bytes of data left", s, size, len(data))}
		}
		copy(full[s.Off:], data[:s.Len])
		data, end = data[s.Len:], s.Off+s.Len
	}
	if len(data) != 0 {
		return nil, badSegments{fmt.Errorf("%d bytes of data beyond the segments", len(data))}
	}
	return full, nil
}

// fixChecksums rewrites the checksum of every block with a ustar magic, so
// that mutated headers (and headers hidden in data) stay headers.
func fixChecksums(b []byte) []byte {
	b = append([]byte(nil), b[:len(b)/512*512]...)
	for off := 0; off < len(b); off += 512 {
		blk := b[off : off+512]
		if !bytes.HasPrefix(blk[257:], []byte("ustar")) {
			continue
		}
		copy(blk[148:156], "        ")
		sum := 0
		for _, c := range blk {
			sum += int(c)
		}
		copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
	return b
}

// goTarTestdata is the directory of archive/tar's test files. The go
// command knows GOROOT; runtime.GOROOT does not in a test built with
// -trimpath, as make test builds them.
func goTarTestdata(t testing.TB) string {
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(root)), "src/archive/tar/testdata")
	if _, err := os.Stat(filepath.Join(dir, "gnu.tar")); err != nil {
		t.Fatalf("archive/tar's test files: %v", err)
	}
	return dir
}

// goTestArchives are archive/tar's own test files, the hostile ones
// included, and the base64 ones decoded.
func goTestArchives(t testing.TB) map[string][]byte {
	dir := goTarTestdata(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.tar*"))
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".base64") {
			if b, err = base64.StdEncoding.DecodeString(string(b)); err != nil {
				t.Fatal(err)
			}
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// corpusArchives are the layers of the hostile corpus.
func corpusArchives() map[string][]byte {
	out := map[string][]byte{}
	for _, c := range hostile.Cases {
		if c.Base != nil {
			out[c.Name+" (base)"] = c.Base.Bytes()
		}
		out[c.Name] = c.Top.Bytes()
	}
	return out
}

// TestSameEntriesAsArchiveTar: c2vm's tar reader gives the entries,
// names, sizes and bytes archive/tar gives, or an error where it does,
// for the hostile corpus (sparse maps with headers hidden where a search
// would find them) and for archive/tar's own test files, read from a
// file and through a pipe, and with every header's checksum made right.
func TestSameEntriesAsArchiveTar(t *testing.T) {
	archives := corpusArchives()
	goFiles := goTestArchives(t)
	if len(goFiles) < 20 {
		t.Fatalf("archive/tar's test files not found (%d)", len(goFiles))
	}
	for name, b := range goFiles {
		archives["go/"+name] = b
	}
	for name, b := range archives {
		for _, in := range [][]byte{b, fixChecksums(b)} {
			for _, seekable := range []bool{true, false} {
				if err := diffArchiveTar(in, seekable, 64<<20); err != nil {
					t.Errorf("%s (seekable %v): %v", name, seekable, err)
				}
			}
		}
	}
}
