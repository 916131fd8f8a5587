package ext4

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	bufBlocks = 256 // 1 MiB: writes are this large while blocks are contiguous
	nBufs     = 3   // one being filled, up to two being written
	// zeroSkip is the shortest run of zero blocks inside a buffer that is
	// left unwritten (the target already reads as zeros). Shorter runs are
	// written with their neighbours to keep writes large.
	zeroSkip = 16
	// flushEvery is how many bytes are written between requests to the
	// kernel to start writing them back to the device.
	flushEvery = 8 << 20
)

var zeroBlock [blockSize]byte

// output gathers blocks at consecutive addresses into a buffer. When the
// buffer is full, or the next block is elsewhere, output hands it to a
// goroutine that writes it. So reading the next file's data overlaps the
// write of the last. Writes never overlap, so their order does not change
// the result.
type output struct {
	f     io.WriterAt
	base  int64  // byte offset of block 0 in f
	buf   []byte // len: bytes gathered so far
	start uint64 // block of buf[0]
	free  chan []byte
	jobs  chan job
	done  chan struct{}

	// fd, when f is a file, lets the writer start writeback of what it
	// wrote (sync_file_range) instead of leaving every byte to the final
	// fsync. The disk then writes while the next files are read. The
	// caller's fsync then waits for little. dirtyFrom..dirtyTo is written
	// but not yet handed to writeback. pending counts the bytes written in
	// it. Only the writer goroutine uses these fields.
	fd                          int
	dirtyFrom, dirtyTo, pending int64

	mu  sync.Mutex
	err error
	// writes and written count calls and bytes. wbCalls and wbBytes count
	// the requests for writeback. Tests and benchmarks read them.
	writes, written, wbCalls, wbBytes int64
}

type job struct {
	b     []byte
	start uint64
}

func newOutput(f io.WriterAt, base int64) *output {
	o := &output{f: f, base: base, free: make(chan []byte, nBufs), jobs: make(chan job, nBufs), done: make(chan struct{}), fd: -1}
	if file, ok := f.(*os.File); ok {
		o.fd = int(file.Fd())
	}
	for range nBufs - 1 {
		o.free <- make([]byte, 0, bufBlocks*blockSize)
	}
	o.buf = make([]byte, 0, bufBlocks*blockSize)
	go o.writer()
	return o
}

// next returns room for up to n blocks at blk (at least one), to be filled
// completely by the caller.
func (o *output) next(blk uint64, n uint64) []byte {
	used := uint64(len(o.buf)) / blockSize
	if len(o.buf) > 0 && (o.start+used != blk || used == bufBlocks) {
		o.flush()
		used = 0
	}
	if len(o.buf) == 0 {
		o.start = blk
	}
	n = min(n, bufBlocks-used)
	l := len(o.buf)
	o.buf = o.buf[:l+int(n)*blockSize]
	return o.buf[l:]
}

// write copies whole blocks of b to blk onwards.
func (o *output) write(blk uint64, b []byte) {
	for len(b) > 0 {
		dst := o.next(blk, uint64(len(b)+blockSize-1)/blockSize)
		c := copy(dst, b)
		clear(dst[c:])
		b = b[c:]
		blk += uint64(len(dst)) / blockSize
	}
}

// flush hands the buffer to the writer and takes a free one.
func (o *output) flush() {
	if len(o.buf) == 0 {
		return
	}
	o.jobs <- job{o.buf, o.start}
	o.buf = (<-o.free)[:0]
}

// close writes what is left, stops the writer and returns the first error.
func (o *output) close() error {
	if o.jobs == nil {
		return o.failed()
	}
	o.flush()
	close(o.jobs)
	<-o.done
	o.jobs = nil
	return o.failed()
}

func (o *output) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (o *output) writer() {
	defer close(o.done)
	for j := range o.jobs {
		if o.failed() == nil {
			if err := o.writeJob(j); err != nil {
				o.mu.Lock()
				o.err = err
				o.mu.Unlock()
			}
		}
		o.free <- j.b
	}
	o.writeback(0)
}

// writeback starts writing back what was written since the last call once
// at least least bytes of it are pending. The range handed over is the
// span of those writes: mostly one increasing run of data, at the end
// metadata anywhere. Clean pages in it cost the kernel a lookup only. A
// failure only loses the head start: the caller's fsync still writes and
// reports.
func (o *output) writeback(least int64) {
	if o.fd < 0 || o.pending == 0 || o.pending < least {
		return
	}
	if unix.SyncFileRange(o.fd, o.dirtyFrom, o.dirtyTo-o.dirtyFrom, unix.SYNC_FILE_RANGE_WRITE) == nil {
		o.mu.Lock()
		o.wbCalls++
		o.wbBytes += o.pending
		o.mu.Unlock()
	}
	o.dirtyFrom, o.dirtyTo, o.pending = 0, 0, 0
}

// wrote records a write at off of n bytes for writeback.
func (o *output) wrote(off, n int64) {
	if o.pending == 0 {
		o.dirtyFrom, o.dirtyTo = off, off+n
	} else {
		o.dirtyFrom, o.dirtyTo = min(o.dirtyFrom, off), max(o.dirtyTo, off+n)
	}
	o.pending += n
	o.writeback(flushEvery)
}

// writeJob writes a buffer, leaving out zero runs of zeroSkip blocks or
// more and zero blocks at its ends.
func (o *output) writeJob(j job) error {
	b := j.b
	n := len(b) / blockSize
	isZero := func(i int) bool { return bytes.Equal(b[i*blockSize:(i+1)*blockSize], zeroBlock[:]) }
	for i := 0; i < n; {
		for i < n && isZero(i) {
			i++
		}
		if i == n {
			break
		}
		// Extend the write until a long enough zero run or the end.
		k, zeros := i, 0
		for k < n && zeros < zeroSkip {
			if isZero(k) {
				zeros++
			} else {
				zeros = 0
			}
			k++
		}
		end := k - zeros
		off := o.base + int64(j.start+uint64(i))*blockSize
		if _, err := o.f.WriteAt(b[i*blockSize:end*blockSize], off); err != nil {
			return fmt.Errorf("writing at byte %d: %w", off, err)
		}
		o.wrote(off, int64(end-i)*blockSize)
		o.mu.Lock()
		o.writes++
		o.written += int64(end-i) * blockSize
		o.mu.Unlock()
		i = k
	}
	return nil
}
