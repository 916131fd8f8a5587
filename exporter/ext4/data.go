package ext4

import (
	"errors"
	"fmt"
	"io"
)

// dataRuns checks a file's size and segments and returns the runs of
// logical blocks that hold data. Blocks without a data byte are holes.
func dataRuns(size int64, segs []Segment) ([]span, error) {
	if size < 0 || size > maxFileSize {
		return nil, fmt.Errorf("size %d beyond ext4's limit of %d bytes", size, int64(maxFileSize))
	}
	if segs == nil {
		if size == 0 {
			return nil, nil
		}
		return []span{{0, ceilDiv(uint64(size), blockSize)}}, nil
	}
	var runs []span
	var end int64
	for i, s := range segs {
		if s.Off < end || s.Len < 0 || s.Off > size || s.Len > size-s.Off {
			return nil, fmt.Errorf("segment %d [%d, +%d) is out of order or outside the size %d", i, s.Off, s.Len, size)
		}
		if s.Len == 0 {
			continue
		}
		end = s.Off + s.Len
		first, last := uint64(s.Off)/blockSize, ceilDiv(uint64(end), blockSize)
		if n := len(runs); n > 0 && runs[n-1].end() >= first {
			runs[n-1].n = last - runs[n-1].start
			continue
		}
		runs = append(runs, span{first, last - first})
	}
	return runs, nil
}

// segReader serves a file's bytes block by block: data from the reader
// where segments are, zeros around them.
type segReader struct {
	segs []Segment
	i    int
	r    io.Reader
}

// fill fills dst with the file's bytes from offset off.
func (s *segReader) fill(dst []byte, off int64) error {
	end := off + int64(len(dst))
	pos := off
	for pos < end {
		for s.i < len(s.segs) && s.segs[s.i].Off+s.segs[s.i].Len <= pos {
			s.i++
		}
		if s.i == len(s.segs) || s.segs[s.i].Off >= end {
			clear(dst[pos-off:])
			return nil
		}
		seg := s.segs[s.i]
		if seg.Off > pos {
			clear(dst[pos-off : seg.Off-off])
			pos = seg.Off
		}
		n := min(seg.Off+seg.Len, end) - pos
		if _, err := io.ReadFull(s.r, dst[pos-off:pos-off+n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading data at offset %d: %w", pos, err)
		}
		pos += n
	}
	return nil
}
