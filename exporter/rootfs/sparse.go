package rootfs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// GNU sparse files come in three encodings (GNU tar manual, "Sparse
// Formats"): the old GNU header ('S', what `tar -S` writes by default), PAX
// 0.0/0.1 (the map in PAX records) and PAX 1.0 (the map at the start of the
// data). archive/tar has validated the map already; this reads it again
// from the entry's own header forward (chain.go), as archive/tar did, and
// checks that the two agree on the amount of data.

const (
	sparseNone = iota
	sparseOldGNU
	sparsePAX0
	sparsePAX1
)

// sparseKind says which encoding archive/tar applied to a header, with its
// own decision rules (reader.go, readGNUSparsePAXHeaders).
func sparseKind(h *tar.Header) int {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return sparseNone // archive/tar reads sparse maps of files only
	}
	if h.Typeflag == tar.TypeGNUSparse {
		return sparseOldGNU
	}
	major, minor := h.PAXRecords["GNU.sparse.major"], h.PAXRecords["GNU.sparse.minor"]
	switch {
	case major == "0" && (minor == "0" || minor == "1"):
		return sparsePAX0
	case major == "1" && minor == "0":
		return sparsePAX1
	case major != "" || minor != "":
		return sparseNone
	case h.PAXRecords["GNU.sparse.map"] != "":
		return sparsePAX0
	}
	return sparseNone
}

// sparseMap returns the data segments of a sparse entry and how many bytes
// of data follow in the stream; ok is false for an ordinary entry.
func (r *tarReader) sparseMap(h *tar.Header) (segs []Segment, phys int64, ok bool, err error) {
	kind := sparseKind(h)
	if kind == sparseNone {
		return nil, 0, false, nil
	}
	segs, phys, err = r.readSparseMap(kind, h)
	if err == nil {
		segs, err = checkSegments(segs, h.Size, phys)
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("sparse file %s: cannot read its data map: %v", quote(h.Name), err)
	}
	return segs, phys, true, nil
}

// readSparseMap parses the map from the blocks archive/tar read for it:
// the entry's own header, then up to the data the old GNU extension
// blocks or the PAX 1.0 map blocks.
func (r *tarReader) readSparseMap(kind int, h *tar.Header) ([]Segment, int64, error) {
	own := r.tap.chain.own
	hdr, ok1 := r.tap.at(own, 512)
	after, ok2 := r.tap.at(own+512, r.tap.off-own-512)
	if own < 0 || !ok1 || !ok2 {
		return nil, 0, fmt.Errorf("its header and map were not kept") // the window holds the longest archive/tar reads
	}
	phys, err := physicalSize(h, hdr)
	if err != nil {
		return nil, 0, err
	}
	var segs []Segment
	switch kind {
	case sparseOldGNU:
		segs, err = oldGNUMap(hdr, after)
	case sparsePAX0:
		segs, err = pax0Map(h.PAXRecords, after)
	case sparsePAX1:
		segs, err = pax1Map(after)
		phys -= int64(len(after)) // the map's blocks are part of the data section
	}
	return segs, phys, err
}

// physicalSize is the data section's size as archive/tar saw it before the
// sparse map replaced Size: the PAX size record, else the header's field.
func physicalSize(h *tar.Header, hdr []byte) (int64, error) {
	if s, ok := h.PAXRecords["size"]; ok {
		return strconv.ParseInt(s, 10, 64)
	}
	return parseNumeric(rawBlock(hdr).size())
}

// checkSegments drops empty segments and checks the map as archive/tar
// does, plus that the data it names is exactly what the stream holds.
func checkSegments(segs []Segment, size, phys int64) ([]Segment, error) {
	if size < 0 || size > MaxFileBytes {
		return nil, fmt.Errorf("declared size %d is beyond ext4's limit of %d bytes", size, int64(MaxFileBytes))
	}
	out := segs[:0]
	var end, total int64
	for _, s := range segs {
		if s.Off < 0 || s.Len < 0 || s.Off > size-s.Len || s.Off < end {
			return nil, fmt.Errorf("segment %d+%d is out of order or beyond the size %d", s.Off, s.Len, size)
		}
		end = s.Off + s.Len
		if s.Len > 0 {
			total += s.Len
			out = append(out, s)
		}
	}
	if total != phys {
		return nil, fmt.Errorf("the map names %d bytes of data but the archive holds %d", total, phys)
	}
	if len(out) == 1 && out[0].Off == 0 && out[0].Len == size {
		return nil, nil // dense after all
	}
	if out == nil {
		out = []Segment{}
	}
	return out, nil
}

// pax0Map reads a PAX 0.0 or 0.1 map as archive/tar does
// (readGNUSparseMap0x1): GNU.sparse.numblocks pairs "offset,length,…" in
// GNU.sparse.map (archive/tar turns 0.0's records into that). No block
// lies between the header and the data.
func pax0Map(rec map[string]string, after []byte) ([]Segment, error) {
	if len(after) != 0 {
		return nil, fmt.Errorf("%d bytes between the header and the data", len(after))
	}
	n, err := strconv.ParseInt(rec["GNU.sparse.numblocks"], 10, 64)
	f := strings.Split(rec["GNU.sparse.map"], ",")
	if len(f) == 1 && f[0] == "" {
		f = nil
	}
	if err != nil || n < 0 || int64(len(f)) != 2*n {
		return nil, fmt.Errorf("GNU.sparse.map does not hold GNU.sparse.numblocks pairs")
	}
	segs := make([]Segment, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		off, err1 := strconv.ParseInt(f[i], 10, 64)
		n, err2 := strconv.ParseInt(f[i+1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad number in GNU.sparse.map")
		}
		segs = append(segs, Segment{off, n})
	}
	return segs, nil
}

// oldGNUMap reads an old GNU map as archive/tar does (readOldGNUSparseMap):
// the header's entries, then, while the isExtended flag is set, those of
// the next block, each list ending at the first entry whose offset starts
// with NUL. ext is what archive/tar read after the header: the extension
// blocks, all of which the map must take.
func oldGNUMap(hdr, ext []byte) ([]Segment, error) {
	var segs []Segment
	s := rawBlock(hdr).sparse()
	for {
		var err error
		if segs, err = s.appendTo(segs); err != nil {
			return nil, err
		}
		if s.isExtended()[0] == 0 {
			break
		}
		if len(ext) < 512 {
			return nil, fmt.Errorf("extension blocks missing")
		}
		s, ext = rawBlock(ext[:512]).toSparse(), ext[512:]
	}
	if len(ext) != 0 {
		return nil, fmt.Errorf("the map ends %d bytes before its data", len(ext))
	}
	return segs, nil
}

// appendTo adds the array's entries up to the first whose offset starts
// with NUL, as GNU tar, BSD tar and archive/tar read them.
func (s sparseArray) appendTo(segs []Segment) ([]Segment, error) {
	for i := 0; i < s.maxEntries() && s.entry(i).offset()[0] != 0; i++ {
		off, err1 := parseNumeric(s.entry(i).offset())
		n, err2 := parseNumeric(s.entry(i).length())
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad number in sparse header")
		}
		segs = append(segs, Segment{off, n})
	}
	return segs, nil
}

// pax1Map reads a PAX 1.0 map as archive/tar does (readGNUSparseMap1x0):
// whole blocks from the start of the data until they hold the newlines
// the map needs. raw is the blocks archive/tar read: the map must need
// them all.
func pax1Map(raw []byte) ([]Segment, error) {
	segs, used, err := parsePAX1(raw)
	if err == nil && roundUp(int64(used), 512) != int64(len(raw)) {
		err = fmt.Errorf("the map takes %d bytes, archive/tar read %d", used, len(raw))
	}
	return segs, err
}

// parsePAX1 reads "count\n" then count pairs "offset\nlength\n"; used is
// how many bytes the text took.
func parsePAX1(b []byte) ([]Segment, int, error) {
	next := func() (int64, error) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return 0, fmt.Errorf("truncated")
		}
		v, err := strconv.ParseInt(string(b[:i]), 10, 64)
		b = b[i+1:]
		return v, err
	}
	total := len(b)
	n, err := next()
	if err != nil || n < 0 || n > int64(total/4) {
		return nil, 0, fmt.Errorf("bad count")
	}
	segs := make([]Segment, 0, n)
	for range n {
		off, err1 := next()
		l, err2 := next()
		if err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("bad entry")
		}
		segs = append(segs, Segment{off, l})
	}
	return segs, total - len(b), nil
}

// parseNumeric reads a tar number field: octal text padded with spaces or
// NULs, or GNU's base-256 with the high bit set. Negative values are refused.
func parseNumeric(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, fmt.Errorf("negative number")
		}
		var x uint64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if x>>55 != 0 {
				return 0, fmt.Errorf("number overflows")
			}
			x = x<<8 | uint64(c)
		}
		return int64(x), nil
	}
	b = bytes.Trim(b, " \x00")
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return 0, nil
	}
	return strconv.ParseInt(string(b), 8, 64)
}
