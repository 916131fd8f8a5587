package ocitest

import (
	"archive/tar"
	"errors"
	"io"
	"testing"
)

// Member is one entry of a tar archive as archive/tar reads it: the header
// and the logical content (holes of sparse files read as zeros).
type Member struct {
	Header *tar.Header
	Data   []byte
}

// ReadTar reads every member of a tar stream, failing the test on a bad
// archive: the reference view other readers are compared with.
func ReadTar(t testing.TB, r io.Reader) []Member {
	t.Helper()
	var out []Member
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Member{h, b})
	}
}
