package rootfs

import (
	"errors"
	"io"
)

// exactReader reads exactly left bytes: it fails with what, instead of
// ending early, when the source ends before (a file that shrank, a
// truncated archive).
type exactReader struct {
	r    io.Reader
	left int64
	what error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, e.what
	}
	if e.left == 0 {
		err = io.EOF
	}
	return n, err
}
