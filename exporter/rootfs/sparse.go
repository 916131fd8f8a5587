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
// data). archive/tar has validated the map already; this recovers it from
// the raw blocks the tap kept, following archive/tar's rules exactly, and
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
	var hdr []byte
	var mapBytes int64 // PAX 1.0: the map's blocks, part of the data section
	switch kind {
	case sparseOldGNU:
		segs, hdr, err = r.oldGNUMap()
	case sparsePAX0:
		hdr = r.tap.block(1)
		segs, err = pax0Map(h.PAXRecords["GNU.sparse.map"])
	case sparsePAX1:
		segs, hdr, mapBytes, err = r.pax1Map()
	}
	if err == nil && hdr == nil {
		err = fmt.Errorf("header not found")
	}
	if err == nil {
		phys, err = physicalSize(h, hdr)
		phys -= mapBytes
	}
	if err == nil {
		segs, err = checkSegments(segs, h.Size, phys)
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("sparse file %s: cannot read its data map: %v", quote(h.Name), err)
	}
	return segs, phys, true, nil
}

// physicalSize is the data section's size as archive/tar saw it before the
// sparse map replaced Size: the PAX size record, else the header's field.
func physicalSize(h *tar.Header, hdr []byte) (int64, error) {
	if s, ok := h.PAXRecords["size"]; ok {
		return strconv.ParseInt(s, 10, 64)
	}
	return parseNumeric(hdr[124:136])
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

// pax0Map reads "offset,length,offset,length,…".
func pax0Map(m string) ([]Segment, error) {
	f := strings.Split(m, ",")
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("odd number of fields in GNU.sparse.map")
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

// oldGNUMap finds the 'S' header among the last blocks read (the header,
// then its extension blocks) and reads its entries.
func (r *tarReader) oldGNUMap() ([]Segment, []byte, error) {
	for k := 1; ; k++ {
		b := r.tap.block(k)
		if b == nil {
			return nil, nil, fmt.Errorf("old GNU header not found")
		}
		// Extension blocks cannot pass for it: byte 156 of theirs is a
		// digit or NUL of an entry's length.
		if b[156] != tar.TypeGNUSparse || !validChecksum(b) || string(b[257:265]) != "ustar  \x00" {
			continue
		}
		segs, ext, err := readOldGNUEntries(b[386:482], b[482])
		// Its extension blocks are exactly the k-1 blocks read after it.
		for i := k - 1; err == nil && i >= 1; i-- {
			if ext == 0 {
				err = fmt.Errorf("blocks after the sparse header are not its extensions")
				break
			}
			x := r.tap.block(i)
			var more []Segment
			more, ext, err = readOldGNUEntries(x[:504], x[504])
			segs = append(segs, more...)
		}
		if err == nil && ext != 0 {
			err = fmt.Errorf("extension blocks missing")
		}
		return segs, b, err
	}
}

// readOldGNUEntries reads 24-byte offset/length pairs until one starts with
// NUL, as GNU tar, BSD tar and archive/tar do.
func readOldGNUEntries(b []byte, ext byte) ([]Segment, byte, error) {
	var segs []Segment
	for i := 0; i+24 <= len(b); i += 24 {
		if b[i] == 0 {
			break
		}
		off, err1 := parseNumeric(b[i : i+12])
		n, err2 := parseNumeric(b[i+12 : i+24])
		if err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("bad number in sparse header")
		}
		segs = append(segs, Segment{off, n})
	}
	return segs, ext, nil
}

// pax1Map finds the map at the start of the data section: m blocks of
// newline-terminated decimals read just now, after the entry's header.
func (r *tarReader) pax1Map() ([]Segment, []byte, int64, error) {
	for m := 1; ; m++ {
		hdr := r.tap.block(m + 1)
		if hdr == nil {
			return nil, nil, 0, fmt.Errorf("PAX 1.0 map not found")
		}
		if !validChecksum(hdr) {
			continue
		}
		var raw []byte
		for i := m; i >= 1; i-- {
			raw = append(raw, r.tap.block(i)...)
		}
		if segs, used, err := parsePAX1(raw); err == nil && roundUp(int64(used), 512) == int64(len(raw)) {
			return segs, hdr, int64(len(raw)), nil
		}
	}
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

// validChecksum checks a raw header's checksum, signed or unsigned as tar
// implementations variously computed it.
func validChecksum(b []byte) bool {
	want, err := parseNumeric(b[148:156])
	if err != nil {
		return false
	}
	var u, s int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	return want == u || want == s
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
