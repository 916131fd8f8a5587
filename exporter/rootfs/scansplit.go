package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
)

// The headers of a large plain tar file are parsed by several goroutines
// at once. archive/tar takes about 12 µs per entry here, so parsing was a
// third of assembling a 1.8 GB tree, on one core while the other waited.
//
// The file is cut into parts, each starting at a block that looks like a
// header near an even share of the file; a goroutine parses each part
// from there while this one parses from the start, in order. Parsing is
// the same from an entry's first header on, whatever came before, so once
// the parse in order reaches an entry at an offset where a part's parse
// found one, the part's entries from there are what one pass would give,
// and are taken. A cut that falls on the second header of an entry (after
// a PAX or long-name header) or inside a file's data (a tar inside the
// image) is found out that way too: its entries never meet the parse in
// order, which then parses that part itself. Hostile input can waste a
// part's work, never change the result; each part holds a bounded number of
// header bytes, so memory stays bounded however many entries there are.

// splitting says when and into how many parts to cut a file.
type splitting struct {
	min   int64 // smaller files are parsed in one pass
	parts int   // at most this many parts
	hold  int64 // header bytes all parts together may hold (an estimate of their memory)
}

// splitSearch is how far past a cut point a part looks for a header.
const splitSearch = 4 << 20

func defaultSplitting() splitting {
	return splitting{min: 64 << 20, parts: min(runtime.GOMAXPROCS(0), 4), hold: 24 << 20}
}

// scanned is an entry a part's goroutine parsed.
type scanned struct {
	at   entryAt
	h    *tar.Header
	segs []Segment
}

// part is one share of the file, parsed by its own goroutine.
type part struct {
	start   int64 // where its parse began: a block that looked like a header
	end     int64 // entries from here on belong to the next part
	entries []scanned
	next    int64 // where the entry after the last one starts
	eof     bool  // the archive ends at next
	ready   chan struct{}
}

// parse reads entries from p.start until one starts at p.end or later, the
// held bytes reach hold, the archive ends or an error. An error is not
// kept: the parse in order meets it again, and reports it, if it is real.
func (p *part) parse(f io.ReaderAt, size, hold int64, stop <-chan struct{}) {
	defer close(p.ready)
	tr := newTarReaderAt(io.NewSectionReader(f, p.start, size-p.start), p.start)
	tr.headersOnly()
	p.next = p.start
	for held := int64(0); p.next < p.end && held < hold; {
		select {
		case <-stop:
			return
		default:
		}
		h, segs, err := tr.Next()
		if errors.Is(err, io.EOF) {
			p.eof = true
			return
		}
		if err != nil {
			return
		}
		p.entries = append(p.entries, scanned{entryAt{tr.hdrOff, tr.dataOff}, h, segs})
		p.next = tr.next
		held += headerBytes(h, segs)
	}
}

// headerBytes estimates the memory a parsed header holds: its names, its
// PAX records (an xattr's also as Xattrs) and its sparse map, which may
// hold far more than the file's size.
func headerBytes(h *tar.Header, segs []Segment) int64 {
	n := int64(512+len(h.Name)+len(h.Linkname)) + 16*int64(cap(segs))
	for k, v := range h.PAXRecords {
		n += int64(128 + 2*len(k) + len(v))
	}
	return n
}

// find returns the index of the entry whose headers start at off.
func (p *part) find(off int64) (int, bool) {
	i := sort.Search(len(p.entries), func(i int) bool { return p.entries[i].at.hdr >= off })
	return i, i < len(p.entries) && p.entries[i].at.hdr == off
}

// cut places up to n-1 parts after the first, each at the first block
// that looks like a header at or after its share of the file. The first
// share, parsed in order, is two thirds of the others: the goroutine
// parsing it also builds the tree from every entry.
func cut(f io.ReaderAt, size int64, n int) []*part {
	var parts []*part
	last := int64(0)
	for k := 1; k < n; k++ {
		at := roundUp(size*int64(3*k-1)/int64(3*n-1), 512)
		if at <= last {
			continue
		}
		start, ok := findHeader(f, at, min(at+splitSearch, size))
		if !ok {
			continue
		}
		parts = append(parts, &part{start: start, ready: make(chan struct{})})
		last = start
	}
	for i, p := range parts {
		p.end = size
		if i+1 < len(parts) {
			p.end = parts[i+1].start
		}
	}
	return parts
}

// findHeader returns the first 512-byte block in [from, to) with a ustar
// magic and a valid checksum. It only guesses where a part may start.
func findHeader(f io.ReaderAt, from, to int64) (int64, bool) {
	buf := make([]byte, 64<<10)
	for off := from; off+512 <= to; {
		n, _ := f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		n -= n % 512
		if n == 0 {
			return 0, false
		}
		for i := 0; i < n; i += 512 {
			if looksLikeHeader(buf[i : i+512]) {
				return off + int64(i), true
			}
		}
		off += int64(n)
	}
	return 0, false
}

func looksLikeHeader(b []byte) bool {
	if !bytes.HasPrefix(b[257:], []byte("ustar")) {
		return false
	}
	field := bytes.Trim(b[148:156], " \x00")
	want, err := strconv.ParseUint(string(field), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += uint64(c)
	}
	return sum == want
}

// scanSplit does what forEach does for a plain file of size bytes, with
// parts parsed alongside, each holding up to hold bytes of headers; fn
// must not read data. It also returns how many entries came from the
// parts.
func (s *layeredSource) scanSplit(ctx context.Context, l int, f io.ReaderAt, size int64, parts []*part, hold int64, fn entryFunc) ([]byte, int, error) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for _, p := range parts {
		wg.Go(func() { p.parse(f, size, hold, stop) })
	}
	sc := &splitScan{ctx: ctx, fn: fn, sum: sha256.New(), parts: parts}
	tr := newTarReader(io.NewSectionReader(f, 0, size))
	tr.headersOnly()
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		p, i, err := sc.meet(tr.next)
		if err != nil {
			return nil, 0, err
		}
		if p != nil {
			for _, e := range p.entries[i:] {
				if err := sc.take(e); err != nil {
					return nil, 0, err
				}
			}
			sc.taken += len(p.entries) - i
			if p.eof {
				return sc.sum.Sum(nil), sc.taken, nil
			}
			tr = newTarReaderAt(io.NewSectionReader(f, p.next, size-p.next), p.next)
			tr.headersOnly()
			continue
		}
		h, segs, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return sc.sum.Sum(nil), sc.taken, nil
		}
		if err != nil {
			return nil, 0, s.corrupt(l, err)
		}
		if err := sc.take(scanned{entryAt{tr.hdrOff, tr.dataOff}, h, segs}); err != nil {
			return nil, 0, err
		}
	}
}

// splitScan is the parse in order of scanSplit: what it has given fn.
type splitScan struct {
	ctx   context.Context
	fn    entryFunc
	sum   hash.Hash
	ord   int32
	taken int     // entries that came from parts
	parts []*part // not yet met or passed
}

// take hands an entry to fn, in order, as forEach would.
func (sc *splitScan) take(e scanned) error {
	if err := sc.ctx.Err(); err != nil {
		return err
	}
	hashHeader(sc.sum, e.h)
	err := sc.fn(sc.ord, e.at, e.h, e.segs, nil)
	sc.ord++
	return err
}

// meet returns the part, and its entry, that starts where the parse in
// order is (pos), if any. A part is passed when pos is beyond its last
// entry or has reached its end, the next part's start: a wrong guess
// whose entries run far ahead must not keep the later parts from being met.
func (sc *splitScan) meet(pos int64) (*part, int, error) {
	for len(sc.parts) > 0 && pos >= sc.parts[0].start {
		p := sc.parts[0]
		select {
		case <-p.ready:
		case <-sc.ctx.Done():
			return nil, 0, sc.ctx.Err()
		}
		if i, ok := p.find(pos); ok {
			sc.parts = sc.parts[1:]
			return p, i, nil
		}
		if pos < p.next && pos < p.end {
			break // a later entry of the part may still start where the parse in order gets
		}
		sc.parts = sc.parts[1:]
	}
	return nil, 0, nil
}
