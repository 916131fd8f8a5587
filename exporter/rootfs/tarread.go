package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
)

// tarReader reads a tar stream with archive/tar, adding what it lacks for a
// root filesystem: the data map of sparse files. archive/tar parses GNU
// sparse maps but keeps them to itself (golang/go#22735) and reads holes
// back as zeros, so a file declaring a 1 TiB hole would be read — and
// written — as 1 TiB of zeros. Here a tap under archive/tar keeps the last
// raw blocks read and follows each entry's headers to its own (chain.go);
// after a sparse header the map is parsed again from that header forward
// (sparse.go), the file's data segments are read straight from the
// stream, and archive/tar takes over again at the next header.
type tarReader struct {
	tap *tap
	tr  *tar.Reader
	// While a sparse entry is current, its data bypasses archive/tar:
	// left is what remains of it in the stream, pad what follows to the
	// next 512-byte block.
	bypass bool
	data   exactReader
	pad    int64
	// Where the current entry lies in the stream: its first header block
	// and its data (after a sparse map); next is where the following
	// entry's headers start, the data's end rounded up to a block.
	hdrOff, dataOff, next int64
}

func newTarReader(r io.Reader) *tarReader {
	t := newTap(r)
	return &tarReader{tap: t, tr: tar.NewReader(t)}
}

// newTarReaderAt reads r, the part of an archive from byte base on:
// offsets, those in errors too, count from the archive's start.
func newTarReaderAt(r io.Reader, base int64) *tarReader {
	t := newTarReader(r)
	t.tap.off, t.next = base, base
	return t
}

// headersOnly tells the reader that file contents will be skipped, not
// read: on a plain file it then reads ahead little.
func (r *tarReader) headersOnly() {
	if r.tap.seekable && r.tap.buf == nil {
		r.tap.ahead = tapHeaders
	}
}

// Next advances to the next entry. For a sparse file it also returns where
// the data lies; Read then yields only those bytes.
func (r *tarReader) Next() (*tar.Header, []Segment, error) {
	if r.bypass {
		if err := r.passSparse(); err != nil {
			return nil, nil, err
		}
	}
	r.hdrOff = r.next
	r.tap.chain.start(r.next)
	h, err := r.tr.Next()
	if err != nil {
		return nil, nil, err
	}
	segs, phys, ok, err := r.sparseMap(h)
	if err != nil {
		return h, nil, err
	}
	r.dataOff = r.tap.off
	if !ok {
		r.next = roundUp(r.dataOff+tarDataBytes(h), 512)
		return h, nil, nil
	}
	r.next = roundUp(r.dataOff+phys, 512)
	r.bypass, r.pad = true, roundUp(phys, 512)-phys
	r.data = exactReader{r: r.tap, left: phys, what: io.ErrUnexpectedEOF}
	return h, segs, nil
}

// passSparse moves past the rest of a sparse file's data and its padding
// as archive/tar moves past an entry's (reader.go, next): data cut short
// is an error, padding cut short the end of the archive.
func (r *tarReader) passSparse() error {
	if err := r.tap.skip(r.data.left); err != nil {
		return noEOF(err)
	}
	r.data.left = 0
	var pad [512]byte
	if _, err := io.ReadFull(r.tap, pad[:r.pad]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		return err
	}
	if r.tap.off != r.next {
		return fmt.Errorf("a sparse file's data ends at byte %d, not at a block boundary", r.tap.off)
	}
	r.bypass = false
	// archive/tar keeps no state between entries that matters here: a new
	// reader at a header boundary continues the archive.
	r.tr = tar.NewReader(r.tap)
	return nil
}

// tarDataBytes is the size of the data section archive/tar gives a
// header it returns: none for the types that carry none (their size field
// is ignored) and for global headers, whose records it has read already.
func tarDataBytes(h *tar.Header) int64 {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo, tar.TypeXGlobalHeader:
		return 0
	}
	return h.Size
}

// Read reads the current entry's content; for a sparse file only its data
// segments, back to back.
func (r *tarReader) Read(p []byte) (int, error) {
	if !r.bypass {
		return r.tr.Read(p)
	}
	return r.data.Read(p)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// tap passes reads through, counting the offset, and keeps a window of the
// bytes read in small reads (headers and sparse maps come in 512-byte
// reads; file data in large ones, which are not copied). It follows the
// current entry's header chain as the blocks go by.
//
// It also buffers: archive/tar reads a header, then a small file's data,
// then its padding, each with its own call, which on a plain file is a
// system call apiece (about 150,000 for a Debian tree). Reads as large as
// the buffer go straight through.
type tap struct {
	r        io.Reader
	off      int64  // bytes consumed so far
	win      []byte // raw bytes ending at off
	chain    headerChain
	seekable bool
	ahead    int    // size of buf
	buf      []byte // read ahead of off: buf[head:tail]
	head     int
	tail     int
}

const (
	tapSmallRead = 4096
	// tapWindow holds the longest sparse map archive/tar accepts with its
	// header: PAX 1.0's 1 MiB of map blocks, or old GNU's 2,076 extension
	// blocks of 505 bytes of map each. A map is parsed from its own
	// entry's blocks only, never from what came before: the parts of a
	// split scan (scansplit.go) rely on that.
	tapWindow = 1<<20 + 16<<10
	tapBuffer = 128 << 10
	// tapHeaders is the read-ahead of a pass that wants headers only from
	// a plain file: archive/tar seeks over each file's data and reads its
	// last byte, so a large read-ahead would read most of the data anyway.
	tapHeaders = 4 << 10
)

func newTap(r io.Reader) *tap {
	t := &tap{r: r, ahead: tapBuffer}
	if s, ok := r.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekCurrent); err == nil {
			t.seekable = true
		}
	}
	return t
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.fill(p)
	t.off += int64(n)
	if n > tapSmallRead {
		t.win = t.win[:0]
	} else if n > 0 {
		if len(t.win)+n > 2*tapWindow {
			t.win = append(t.win[:0], t.win[len(t.win)-tapWindow:]...)
		}
		t.win = append(t.win, p[:n]...)
	}
	if n > 0 {
		t.chain.see(t)
	}
	return n, err
}

// fill reads into p from the buffer, refilling it when empty; reads as
// large as the buffer bypass it.
func (t *tap) fill(p []byte) (int, error) {
	if t.head == t.tail {
		if len(p) >= t.ahead {
			return t.r.Read(p)
		}
		if t.buf == nil {
			t.buf = make([]byte, t.ahead)
		}
		n, err := t.r.Read(t.buf)
		t.head, t.tail = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, t.buf[t.head:t.tail])
	t.head += n
	return n, nil
}

// Seek lets archive/tar skip file contents without reading them when the
// stream is a plain file.
func (t *tap) Seek(off int64, whence int) (int64, error) {
	if !t.seekable {
		return 0, errors.New("not seekable")
	}
	if whence == io.SeekCurrent && off == 0 {
		return t.off, nil
	}
	if whence != io.SeekCurrent || off < 0 {
		return 0, fmt.Errorf("tap: unsupported seek")
	}
	t.win = t.win[:0]
	if buffered := int64(t.tail - t.head); off <= buffered {
		t.head += int(off)
		t.off += off
		return t.off, nil
	}
	rest := off - int64(t.tail-t.head)
	t.head, t.tail = 0, 0
	if _, err := t.r.(io.Seeker).Seek(rest, io.SeekCurrent); err != nil {
		return 0, err
	}
	t.off += off
	return t.off, nil
}

// skip moves n bytes forward. A seek does not find out that the stream
// ends before; as archive/tar does (discard), it seeks to the last byte
// and reads that.
func (t *tap) skip(n int64) error {
	if t.seekable && n > 1 {
		if _, err := t.Seek(n-1, io.SeekCurrent); err != nil {
			return err
		}
		n = 1
	}
	_, err := io.CopyN(io.Discard, t, n)
	return err
}

// at returns the n bytes read at offset off, if the window still holds
// them.
func (t *tap) at(off, n int64) ([]byte, bool) {
	start := off - (t.off - int64(len(t.win)))
	if start < 0 || n < 0 || start > int64(len(t.win))-n {
		return nil, false
	}
	return t.win[start : start+n], true
}
