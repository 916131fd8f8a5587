// Package bounded caps what a reader or writer of hostile input passes
// on: a small compressed file can declare gigabytes, and a file named by
// an image can be any size.
package bounded

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Writer passes at most Left bytes to W; a write past them fails with Err
// and writes nothing.
type Writer struct {
	W    io.Writer
	Left int64
	Err  error
}

func (b *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > b.Left {
		return 0, b.Err
	}
	b.Left -= int64(len(p))
	return b.W.Write(p)
}

// Reader reads at most Left bytes of R; when R holds more, reading past
// them fails with Err (io.LimitReader would end quietly, as if the input
// ended there).
type Reader struct {
	R    io.Reader
	Left int64
	Err  error
}

func (b *Reader) Read(p []byte) (int, error) {
	if b.Left <= 0 {
		if n, _ := b.R.Read(make([]byte, 1)); n > 0 {
			return 0, b.Err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.Left {
		p = p[:b.Left]
	}
	n, err := b.R.Read(p)
	b.Left -= int64(n)
	return n, err
}

// ReadFile reads the regular file p beneath r, refusing more than max
// bytes. A missing file is fs.ErrNotExist. The open does not block: a FIFO
// put where a file is expected is refused, not waited on.
func ReadFile(r *os.Root, p string, max int64) ([]byte, error) {
	f, err := r.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(data)) > max {
		err = fmt.Errorf("%s: larger than %d bytes", p, max)
	}
	return data, err
}
