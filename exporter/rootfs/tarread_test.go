package rootfs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestTapBuffering: small reads, large reads and seeks, in any order and
// across the read-ahead buffer's edges, see exactly the stream's bytes at
// the offset the tap reports, seekable or not.
func TestTapBuffering(t *testing.T) {
	data := make([]byte, 3*tapBuffer+777)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	for _, seekable := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(1, 2))
		var src io.Reader = bytes.NewReader(data)
		if !seekable {
			src = struct{ io.Reader }{src}
		}
		tp := newTap(src)
		var pos int64
		for pos < int64(len(data)) {
			switch rng.IntN(3) {
			case 0: // a header-sized read
				pos = tapRead(t, tp, data, pos, 512)
			case 1: // a file's data, up to larger than the buffer
				pos = tapRead(t, tp, data, pos, 1+rng.IntN(2*tapBuffer))
			case 2:
				n := min(int64(rng.IntN(tapBuffer+1000)), int64(len(data))-pos)
				if err := tp.skip(n); err != nil {
					t.Fatal(err)
				}
				pos += n
			}
			if seekable && pos < int64(len(data)) {
				if off, _ := tp.Seek(0, io.SeekCurrent); off != pos {
					t.Fatalf("tap at %d, want %d", off, pos)
				}
			}
		}
	}
}

func tapRead(t *testing.T, tp *tap, data []byte, pos int64, n int) int64 {
	t.Helper()
	want := data[pos:min(pos+int64(n), int64(len(data)))]
	got := make([]byte, len(want))
	if _, err := io.ReadFull(tp, got); err != nil {
		t.Fatalf("read %d at %d: %v", n, pos, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d at %d: wrong bytes", n, pos)
	}
	if b, ok := tp.at(pos, 512); len(want) == 512 && (!ok || !bytes.Equal(b, want)) {
		t.Fatalf("window at %d does not hold the last block", pos)
	}
	return pos + int64(len(want))
}
