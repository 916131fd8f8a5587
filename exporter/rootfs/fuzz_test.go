package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/hostile"
	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/usererr"
)

// fuzzLayers turns fuzz bytes into up to three layers of entries whose
// names come from a small alphabet (so that they collide, nest, whiteout
// and link to each other) and whose types cover every kind.
func fuzzLayers(data []byte) [][]byte {
	names := []string{"a", "b", "a/b", "a/c", "b/a", ".wh.a", "a/.wh.b", "a/.wh..wh..opq", ".", "..", "a/..", "/a", "a/b/c", "c", ".wh..wh..opq", "b/../a"}
	targets := []string{"a", "/a", "../a", "a/b", "b", "c", "", "/", ".."}
	var layers [][]byte
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	flush := func() {
		tw.Close()
		layers = append(layers, append([]byte{}, buf.Bytes()...))
		buf.Reset()
		tw = tar.NewWriter(&buf)
	}
	for i := 0; i+2 < len(data) && len(layers) < 3; i += 3 {
		op, n, t := data[i], names[int(data[i+1])%len(names)], targets[int(data[i+2])%len(targets)]
		h := &tar.Header{Name: n, Mode: int64(op) << 4 & 0o7777, Uid: int(op), Format: tar.FormatPAX}
		switch op % 9 {
		case 0:
			flush()
			continue
		case 1:
			h.Typeflag = tar.TypeDir
		case 2:
			h.Typeflag, h.Linkname = tar.TypeSymlink, t
		case 3:
			h.Typeflag, h.Linkname = tar.TypeLink, t
		case 4:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(op), int64(data[i+2])
		case 5:
			h.Typeflag = tar.TypeFifo
		case 6:
			h.Typeflag, h.PAXRecords = tar.TypeReg, map[string]string{"SCHILY.xattr.user.f": t}
		default:
			h.Typeflag = tar.TypeReg
		}
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = strings.Repeat(string(rune('a'+op%26)), int(data[i+2]))
			h.Size = int64(len(body))
		}
		if tw.WriteHeader(h) != nil {
			continue
		}
		io.WriteString(tw, body)
	}
	flush()
	return layers
}

// memLayers is a layered source over layers held in memory.
func memLayers(layers [][]byte) *layeredSource {
	s := &layeredSource{desc: "fuzz", whiteouts: true}
	for _, l := range layers {
		b := l
		s.layers = append(s.layers, Layer{Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	return s
}

func FuzzFlatten(f *testing.F) {
	f.Add([]byte{1, 0, 0, 7, 2, 0, 0, 0, 0, 3, 5, 3, 6, 1, 2})
	f.Add([]byte{2, 0, 3, 7, 3, 1, 1, 1, 1, 0, 0, 0, 7, 5, 0, 7, 12, 0})
	f.Add([]byte{7, 2, 5, 3, 3, 3, 0, 0, 0, 7, 2, 1, 3, 4, 3, 7, 7, 1})
	f.Add([]byte{1, 0, 0, 2, 1, 8, 7, 3, 1, 0, 0, 0, 7, 6, 0, 1, 15, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		layers := fuzzLayers(data)
		// Read as plain tar files, once each, the same comes out.
		samePasses(t, layers, true)
		src := memLayers(layers)
		inv, err := src.Scan(context.Background())
		if err != nil {
			var ue *usererr.Error
			if !errors.As(err, &ue) {
				t.Fatalf("not a user error: %v", err)
			}
			return
		}
		sink := newRecSink(t)
		if err := src.Stream(context.Background(), sink); err != nil {
			t.Fatalf("scan passed, stream failed: %v", err)
		}
		paths := map[string]bool{}
		for _, p := range sink.order {
			paths[p] = true
			if CheckName(p) != nil || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") || strings.HasPrefix(p, "/") {
				t.Fatalf("unclean path %q", p)
			}
		}
		if int64(len(paths)) != inv.Entries {
			t.Fatalf("inventory %d entries, %d sent", inv.Entries, len(paths))
		}
	})
}

// FuzzTarReader feeds raw bytes to the tar reader, sparse maps included,
// as they are and with every ustar block's checksum made right: the same
// entries, names, sizes and bytes as archive/tar reads, or an error from
// both (diffArchiveTar); never a panic or unbounded reading.
func FuzzTarReader(f *testing.F) {
	for _, seed := range [][]byte{
		ocitestSparse("0", "1", "0,5,20,5", 10, 100),
		ocitestSparse("1", "0", "", 512+10, 100),
		ocitestSparse("", "", "1,2", 2, 10),
	} {
		f.Add(seed)
	}
	for _, c := range hostile.Cases {
		if strings.Contains(c.Name, "sparse") {
			f.Add(c.Top.Bytes())
		}
	}
	for name, b := range goTestArchives(f) {
		if strings.Contains(name, "sparse") && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, fixChecksums(data)} {
			for _, seekable := range []bool{true, false} {
				if err := diffArchiveTar(in, seekable, 1<<20); err != nil {
					t.Fatalf("seekable %v, checksums fixed %v: %v", seekable, len(in) != len(data) || !bytes.Equal(in, data), err)
				}
			}
		}
	})
}

// ocitestSparse is a PAX sparse entry written by hand (archive/tar's
// writer does not write sparse files).
func ocitestSparse(major, minor, m string, phys int, size int) []byte {
	rec := map[string]string{"GNU.sparse.name": "s", "GNU.sparse.size": strconv.Itoa(size)}
	if major != "" {
		rec["GNU.sparse.major"], rec["GNU.sparse.minor"] = major, minor
	}
	body := strings.Repeat("x", phys)
	if major == "1" {
		body = "1\n3\n10\n" + strings.Repeat("\x00", 512-7) + strings.Repeat("x", 10)
	} else {
		rec["GNU.sparse.map"] = m
	}
	return ocitest.NewTar().RawPAX("GNUSparseFile.0/s", '0', "", int64(len(body)), rec, body).Bytes()
}
