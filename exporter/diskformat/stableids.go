package diskformat

// qemu-img writes random identifiers, and a VHD's creation time, into the
// disks it makes: with them, two runs of one build differ although the
// guest sees the same bytes. StableIDs replaces them, after qemu-img has
// finished, with identifiers derived from a seed (the raw disk's GPT GUID,
// itself derived from the build's input), so that SOURCE_DATE_EPOCH builds
// are byte-identical. Each format's code reads only what it patches, and
// refuses a file whose structures are not what qemu-img writes, rather
// than guess.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// StableIDs rewrites, in place, the random identifiers (and, given epoch,
// the timestamp) qemu-img wrote into the disk at path, of qemu-img format
// qemuFormat: vmdk (the descriptor's CID), vdi (the header's UUIDs), vpc
// (the VHD footer's unique ID and time stamp) or vhdx (the headers' GUIDs
// and sequence numbers, the log entries' GUID, the Page 83 GUID). Each
// identifier is derived from SHA-256(seed || a label of the field); the
// checksums covering them are recomputed. Other formats are left as they
// are. Without epoch, the VHD time stamp stays the one qemu-img wrote.
func StableIDs(path, qemuFormat string, seed []byte, epoch *time.Time) error {
	patch := stablePatches[qemuFormat]
	if patch == nil {
		return nil
	}
	if len(seed) == 0 {
		return errors.New("stable disk identifiers: empty seed")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		err = patch(&image{f: f, size: st.Size()}, &idSource{seed: seed}, epoch)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stable identifiers in %s (%s): %w", path, qemuFormat, err)
	}
	return nil
}

// stablePatches are the formats qemu-img writes random identifiers into,
// by qemu-img name.
var stablePatches = map[string]func(*image, *idSource, *time.Time) error{
	"vmdk": stableVMDK,
	"vdi":  stableVDI,
	"vpc":  stableVHD,
	"vhdx": stableVHDX,
}

// HasRandomIDs says whether qemu-img writes random identifiers into format
// qemuFormat, which StableIDs replaces.
func HasRandomIDs(qemuFormat string) bool { return stablePatches[qemuFormat] != nil }

// image is the file being patched, with reads and writes checked against
// its size: every offset comes from the file.
type image struct {
	f    io.ReaderAt
	size int64
}

func (m *image) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > m.size || n > m.size-off {
		return nil, fmt.Errorf("%d bytes at %d are outside the file of %d bytes", n, off, m.size)
	}
	b := make([]byte, n)
	if _, err := m.f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

func (m *image) write(off int64, b []byte) error {
	if off < 0 || off > m.size || int64(len(b)) > m.size-off {
		return fmt.Errorf("%d bytes at %d are outside the file of %d bytes", len(b), off, m.size)
	}
	w, ok := m.f.(io.WriterAt)
	if !ok {
		return errors.New("image is read-only")
	}
	_, err := w.WriteAt(b, off)
	return err
}

// idSource derives the identifiers from the seed.
type idSource struct {
	seed []byte
	// seen maps each label to the original values already replaced, so
	// that a value qemu wrote twice (a GUID in both VHDX headers) is
	// replaced by one value, and two different ones by two.
	seen map[string][][]byte
}

func (s *idSource) sum(label string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(s.seed)
	h.Write([]byte(label))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// uuidLayout says where a format keeps a UUID's version nibble.
type uuidLayout int

const (
	// rfcLayout is RFC 4122's byte order (VHD): the version is byte 6's
	// high nibble.
	rfcLayout uuidLayout = iota
	// guidLayout is Microsoft's GUID with its first three fields little
	// endian (VHDX, VDI): the version is byte 7's high nibble.
	guidLayout
)

// uuid is a random-style (version 4, RFC 4122 variant) UUID from label.
func (s *idSource) uuid(label string, layout uuidLayout) [16]byte {
	sum := s.sum(label)
	var u [16]byte
	copy(u[:], sum[:16])
	v := 6
	if layout == guidLayout {
		v = 7
	}
	u[v] = u[v]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// replace gives the derived value for orig, a UUID of field label: equal
// originals get equal replacements, in the order they are met, and an
// all-zero one (no identifier, such as an empty VHDX log's GUID) stays
// zero.
func (s *idSource) replace(label string, orig []byte, layout uuidLayout) []byte {
	if isZero(orig) {
		return orig
	}
	if s.seen == nil {
		s.seen = map[string][][]byte{}
	}
	i := 0
	for ; i < len(s.seen[label]); i++ {
		if bytes.Equal(s.seen[label][i], orig) {
			break
		}
	}
	if i == len(s.seen[label]) {
		s.seen[label] = append(s.seen[label], bytes.Clone(orig))
	}
	u := s.uuid(fmt.Sprintf("%s#%d", label, i), layout)
	return u[:]
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ---- VMDK: the embedded descriptor's CID ----

// The sparse extent header (VMware's Virtual Disk Format 5.0), little
// endian; qemu-img's monolithicSparse and streamOptimized files start
// with it.
const (
	vmdkMagic           = "KDMV"
	vmdkOffVersion      = 4
	vmdkOffDescOffset   = 28 // in sectors
	vmdkOffDescSize     = 36 // in sectors
	vmdkHeaderSize      = 512
	vmdkMaxDescSectors  = 2048 // qemu writes 20; anything far larger is not a descriptor
	vmdkDescriptorStart = "# Disk DescriptorFile"
	vmdkCIDKey          = "CID="
	// vmdkCIDNone is parentCID's "no parent": a CID must not be it.
	vmdkCIDNone = 0xffffffff
)

func stableVMDK(m *image, ids *idSource, _ *time.Time) error {
	h, err := m.read(0, vmdkHeaderSize)
	if err != nil {
		return err
	}
	if string(h[:4]) != vmdkMagic {
		return errors.New("no VMDK sparse extent header")
	}
	if v := binary.LittleEndian.Uint32(h[vmdkOffVersion:]); v < 1 || v > 3 {
		return fmt.Errorf("VMDK version %d", v)
	}
	off := binary.LittleEndian.Uint64(h[vmdkOffDescOffset:])
	n := binary.LittleEndian.Uint64(h[vmdkOffDescSize:])
	if off == 0 || n == 0 || n > vmdkMaxDescSectors || off > uint64(m.size)/512 {
		return fmt.Errorf("VMDK descriptor of %d sectors at sector %d", n, off)
	}
	desc, err := m.read(int64(off)*512, int64(n)*512)
	if err != nil {
		return err
	}
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i] // the text ends at the first NUL
	}
	if !bytes.HasPrefix(desc, []byte(vmdkDescriptorStart)) {
		return errors.New("no VMDK descriptor")
	}
	start, end, err := vmdkCID(desc)
	if err != nil {
		return err
	}
	sum := ids.sum("vmdk/cid")
	cid := binary.BigEndian.Uint32(sum[:4])
	if cid == vmdkCIDNone {
		cid = binary.BigEndian.Uint32(sum[4:8])
	}
	// qemu writes the CID without leading zeros, so its length varies:
	// the descriptor is rewritten whole, padded with NULs as qemu pads it.
	text := slices.Concat(desc[:start], fmt.Appendf(nil, "%x", cid), desc[end:])
	area := make([]byte, int64(n)*512)
	if len(text) >= len(area) {
		return errors.New("VMDK descriptor too long for its space")
	}
	copy(area, text)
	return m.write(int64(off)*512, area)
}

// vmdkCID is where the hex digits of the descriptor's one CID line are
// (parentCID is a different key).
func vmdkCID(desc []byte) (start, end int, err error) {
	start, pos := -1, 0
	for _, line := range strings.SplitAfter(string(desc), "\n") {
		if strings.HasPrefix(line, vmdkCIDKey) {
			v := strings.TrimRight(line[len(vmdkCIDKey):], "\r\n")
			if start >= 0 || len(v) == 0 || len(v) > 8 || strings.Trim(v, "0123456789abcdefABCDEF") != "" {
				return 0, 0, fmt.Errorf("VMDK descriptor line %q", strings.TrimSpace(line))
			}
			start, end = pos+len(vmdkCIDKey), pos+len(vmdkCIDKey)+len(v)
		}
		pos += len(line)
	}
	if start < 0 {
		return 0, 0, errors.New("VMDK descriptor without a CID")
	}
	return start, end, nil
}

// ---- VDI: the header's UUIDs ----

// VirtualBox's VDI header, version 1.1, little endian (QEMU's
// block/vdi.c VdiHeader).
const (
	vdiSignature     = 0xbeda107f
	vdiVersion       = 0x00010001
	vdiOffSignature  = 64
	vdiOffVersion    = 68
	vdiOffHeaderSize = 72 // the header's size, counted from this field
	vdiOffUUIDImage  = 392
	vdiOffUUIDSnap   = 408
	vdiOffUUIDLink   = 424
	vdiOffUUIDParent = 440
	vdiUUIDsEnd      = vdiOffUUIDParent + 16
	vdiHeaderBytes   = 512
)

func stableVDI(m *image, ids *idSource, _ *time.Time) error {
	h, err := m.read(0, vdiHeaderBytes)
	if err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(h[vdiOffSignature:]) != vdiSignature {
		return errors.New("no VDI signature")
	}
	if v := binary.LittleEndian.Uint32(h[vdiOffVersion:]); v != vdiVersion {
		return fmt.Errorf("VDI version %#x", v)
	}
	if n := binary.LittleEndian.Uint32(h[vdiOffHeaderSize:]); int64(n) < vdiUUIDsEnd-vdiOffHeaderSize {
		return fmt.Errorf("VDI header of %d bytes", n)
	}
	// All four through one mapping: the link and parent are zero in
	// qemu's images and stay so; were one equal to another UUID, it
	// would stay equal.
	for _, off := range []int{vdiOffUUIDImage, vdiOffUUIDSnap, vdiOffUUIDLink, vdiOffUUIDParent} {
		copy(h[off:off+16], ids.replace("vdi/uuid", h[off:off+16], guidLayout))
	}
	return m.write(vdiOffUUIDImage, h[vdiOffUUIDImage:vdiUUIDsEnd])
}

// ---- VHD: the footer's time stamp, unique ID and checksum ----

// The VHD footer (Microsoft's Virtual Hard Disk Image Format
// Specification), big endian: at the end of the file, and for a dynamic
// disk a copy at its start.
const (
	vhdFooterSize   = 512
	vhdCookie       = "conectix"
	vhdOffTimestamp = 24 // seconds since vhdEpoch
	vhdOffDiskType  = 60
	vhdOffChecksum  = 64
	vhdOffUniqueID  = 68
	vhdFixed        = 2
	vhdDynamic      = 3
)

var vhdEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func stableVHD(m *image, ids *idSource, epoch *time.Time) error {
	end := m.size - vhdFooterSize
	f, err := m.read(end, vhdFooterSize)
	if err != nil {
		return err
	}
	if string(f[:8]) != vhdCookie || vhdChecksum(f) != binary.BigEndian.Uint32(f[vhdOffChecksum:]) {
		return errors.New("no valid VHD footer at the end")
	}
	at := []int64{end}
	switch t := binary.BigEndian.Uint32(f[vhdOffDiskType:]); t {
	case vhdFixed:
	case vhdDynamic:
		head, err := m.read(0, vhdFooterSize)
		if err != nil {
			return err
		}
		if !bytes.Equal(head, f) {
			return errors.New("the dynamic VHD's footer copy differs from its footer")
		}
		at = append(at, 0)
	default:
		return fmt.Errorf("VHD disk type %d", t) // differencing, or unknown
	}
	if epoch != nil {
		ts, err := vhdTimestamp(*epoch)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(f[vhdOffTimestamp:], ts)
	}
	u := ids.uuid("vhd/unique-id", rfcLayout)
	copy(f[vhdOffUniqueID:], u[:])
	binary.BigEndian.PutUint32(f[vhdOffChecksum:], vhdChecksum(f))
	for _, off := range at {
		if err := m.write(off, f); err != nil {
			return err
		}
	}
	return nil
}

// vhdTimestamp is t in the footer's seconds since 2000; an earlier time
// is 2000 itself, the earliest a VHD can say.
func vhdTimestamp(t time.Time) (uint32, error) {
	s := t.Unix() - vhdEpoch.Unix()
	if s < 0 {
		return 0, nil
	}
	if s > math.MaxUint32 {
		return 0, fmt.Errorf("time %s is past what a VHD footer holds", t.UTC())
	}
	return uint32(s), nil
}

// vhdChecksum is the one's complement of the footer's byte sum, with the
// checksum field taken as zero.
func vhdChecksum(f []byte) uint32 {
	var sum uint32
	for i, c := range f {
		if i < vhdOffChecksum || i >= vhdOffChecksum+4 {
			sum += uint32(c)
		}
	}
	return ^sum
}

// ---- VHDX: headers, log entries, Page 83 data ----

// Microsoft's VHDX Format Specification v1.00 (QEMU's block/vhdx.h),
// little endian.
const (
	vhdxFileSignature = "vhdxfile"

	// The two headers, each 4 KiB checked by a CRC-32C of it with the
	// checksum field zero; the one with the larger sequence number is
	// the current one.
	vhdxHeader1         = 64 << 10
	vhdxHeader2         = 128 << 10
	vhdxHeaderSize      = 4 << 10
	vhdxHeaderSignature = "head"
	vhdxOffChecksum     = 4
	vhdxOffSequence     = 8
	vhdxOffFileWrite    = 16
	vhdxOffDataWrite    = 32
	vhdxOffLogGUID      = 48
	vhdxOffLogLength    = 68
	vhdxOffLogOffset    = 72
	// vhdxMaxSequenceGap bounds the two headers' sequence distance: qemu
	// writes them one apart.
	vhdxMaxSequenceGap = 1 << 16

	// The log, a circular buffer of entries in 4 KiB sectors, each entry
	// checked by a CRC-32C over its whole length.
	vhdxLogAlign          = 1 << 20
	vhdxLogSector         = 4 << 10
	vhdxLogEntrySignature = "loge"
	vhdxOffEntryChecksum  = 4
	vhdxOffEntryLength    = 8
	vhdxOffEntryLogGUID   = 32

	// The region table (its first copy), 64 KiB with a CRC-32C.
	vhdxRegionTable       = 192 << 10
	vhdxRegionTableSize   = 64 << 10
	vhdxRegionSignature   = "regi"
	vhdxOffRegionChecksum = 4
	vhdxOffRegionCount    = 8
	vhdxRegionEntries     = 16
	vhdxRegionEntrySize   = 32
	vhdxMaxRegions        = 2047

	// The metadata region: a table of items (not checksummed), whose
	// offsets are from the region's start.
	vhdxMetadataSignature = "metadata"
	vhdxOffMetadataCount  = 10
	vhdxMetadataEntries   = 32
	vhdxMetadataEntrySize = 32
	vhdxMaxMetadataItems  = 2047
	vhdxMetadataTableSize = 64 << 10
	vhdxPage83Size        = 16
)

// GUIDs as stored (Microsoft GUID byte order).
var (
	// 8B7CA206-4790-4B9A-B8FE-575F050F886E
	vhdxMetadataRegionGUID = []byte{0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e}
	// BECA12AB-B2E6-4523-93EF-C309E000C746
	vhdxPage83GUID = []byte{0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// vhdxCRC is the CRC-32C of b with its 4-byte checksum field at off zero.
func vhdxCRC(b []byte, off int) uint32 {
	var saved [4]byte
	copy(saved[:], b[off:off+4])
	clear(b[off : off+4])
	sum := crc32.Checksum(b, castagnoli)
	copy(b[off:off+4], saved[:])
	return sum
}

func stableVHDX(m *image, ids *idSource, _ *time.Time) error {
	sig, err := m.read(0, 8)
	if err != nil {
		return err
	}
	if string(sig) != vhdxFileSignature {
		return errors.New("no VHDX file identifier")
	}
	h1, err := vhdxReadHeader(m, vhdxHeader1)
	if err != nil {
		return err
	}
	h2, err := vhdxReadHeader(m, vhdxHeader2)
	if err != nil {
		return err
	}
	if !bytes.Equal(h1[vhdxOffLogLength:vhdxOffLogOffset+8], h2[vhdxOffLogLength:vhdxOffLogOffset+8]) {
		return errors.New("the VHDX headers place the log differently")
	}
	if err := vhdxPatchLog(m, ids, h1); err != nil {
		return err
	}
	if err := vhdxPatchHeaders(m, ids, h1, h2); err != nil {
		return err
	}
	return vhdxPatchPage83(m, ids)
}

func vhdxReadHeader(m *image, off int64) ([]byte, error) {
	h, err := m.read(off, vhdxHeaderSize)
	if err != nil {
		return nil, err
	}
	if string(h[:4]) != vhdxHeaderSignature || vhdxCRC(h, vhdxOffChecksum) != binary.LittleEndian.Uint32(h[vhdxOffChecksum:]) {
		return nil, fmt.Errorf("no valid VHDX header at %d", off)
	}
	// A log GUID says the log holds entries to replay, which a new GUID
	// would orphan: qemu-img leaves none when it exits.
	if !isZero(h[vhdxOffLogGUID : vhdxOffLogGUID+16]) {
		return nil, fmt.Errorf("the VHDX header at %d has a log to replay", off)
	}
	return h, nil
}

// vhdxPatchHeaders gives both headers derived GUIDs and sequence numbers,
// keeping their order (which one is current) and their distance.
func vhdxPatchHeaders(m *image, ids *idSource, h1, h2 []byte) error {
	s1 := binary.LittleEndian.Uint64(h1[vhdxOffSequence:])
	s2 := binary.LittleEndian.Uint64(h2[vhdxOffSequence:])
	low := min(s1, s2)
	if s1 == s2 || max(s1, s2)-low > vhdxMaxSequenceGap {
		return fmt.Errorf("VHDX header sequence numbers %d and %d", s1, s2)
	}
	sum := ids.sum("vhdx/sequence")
	// A base well below the top: the file's later writers increment it.
	base := binary.LittleEndian.Uint64(sum[:8]) >> 2
	for _, h := range []struct {
		b   []byte
		off int64
		seq uint64
	}{{h1, vhdxHeader1, s1}, {h2, vhdxHeader2, s2}} {
		binary.LittleEndian.PutUint64(h.b[vhdxOffSequence:], base+h.seq-low)
		copy(h.b[vhdxOffFileWrite:], ids.replace("vhdx/file-write-guid", h.b[vhdxOffFileWrite:vhdxOffFileWrite+16], guidLayout))
		copy(h.b[vhdxOffDataWrite:], ids.replace("vhdx/data-write-guid", h.b[vhdxOffDataWrite:vhdxOffDataWrite+16], guidLayout))
		binary.LittleEndian.PutUint32(h.b[vhdxOffChecksum:], vhdxCRC(h.b, vhdxOffChecksum))
		if err := m.write(h.off, h.b); err != nil {
			return err
		}
	}
	return nil
}

// vhdxPatchLog gives every entry in the log a derived log GUID. The
// entries are stale (no header names their GUID) but still carry the
// random one qemu-img wrote them with. An entry starts at a 4 KiB
// boundary of the circular log, and may wrap around its end.
func vhdxPatchLog(m *image, ids *idSource, h []byte) error {
	length := int64(binary.LittleEndian.Uint32(h[vhdxOffLogLength:]))
	off := binary.LittleEndian.Uint64(h[vhdxOffLogOffset:])
	if length == 0 {
		return nil
	}
	if length%vhdxLogAlign != 0 || off%vhdxLogAlign != 0 || off == 0 || off > uint64(m.size) {
		return fmt.Errorf("VHDX log of %d bytes at %d", length, off)
	}
	log, err := m.read(int64(off), length)
	if err != nil {
		return err
	}
	changed := false
	for at := int64(0); at < length; at += vhdxLogSector {
		if string(log[at:at+4]) != vhdxLogEntrySignature {
			continue
		}
		n := int64(binary.LittleEndian.Uint32(log[at+vhdxOffEntryLength:]))
		if n == 0 || n%vhdxLogSector != 0 || n > length {
			return fmt.Errorf("VHDX log entry of %d bytes at %d", n, at)
		}
		entry := circularRead(log, at, n)
		if vhdxCRC(entry, vhdxOffEntryChecksum) != binary.LittleEndian.Uint32(entry[vhdxOffEntryChecksum:]) {
			return fmt.Errorf("VHDX log entry at %d has a bad checksum", at)
		}
		copy(entry[vhdxOffEntryLogGUID:], ids.replace("vhdx/log-guid", entry[vhdxOffEntryLogGUID:vhdxOffEntryLogGUID+16], guidLayout))
		binary.LittleEndian.PutUint32(entry[vhdxOffEntryChecksum:], vhdxCRC(entry, vhdxOffEntryChecksum))
		circularWrite(log, at, entry)
		changed = true
	}
	if !changed {
		return nil
	}
	return m.write(int64(off), log)
}

// circularRead copies n bytes of buf from at, wrapping at its end.
func circularRead(buf []byte, at, n int64) []byte {
	out := make([]byte, n)
	k := copy(out, buf[at:])
	copy(out[k:], buf)
	return out
}

func circularWrite(buf []byte, at int64, b []byte) {
	k := copy(buf[at:], b)
	copy(buf, b[k:])
}

// vhdxPatchPage83 gives the disk's SCSI Page 83 identifier a derived GUID.
func vhdxPatchPage83(m *image, ids *idSource) error {
	rt, err := m.read(vhdxRegionTable, vhdxRegionTableSize)
	if err != nil {
		return err
	}
	if string(rt[:4]) != vhdxRegionSignature || vhdxCRC(rt, vhdxOffRegionChecksum) != binary.LittleEndian.Uint32(rt[vhdxOffRegionChecksum:]) {
		return errors.New("no valid VHDX region table")
	}
	count := binary.LittleEndian.Uint32(rt[vhdxOffRegionCount:])
	if count > vhdxMaxRegions {
		return fmt.Errorf("VHDX region table of %d entries", count)
	}
	var regionOff, regionLen int64 = -1, 0
	for i := range int64(count) {
		e := rt[vhdxRegionEntries+i*vhdxRegionEntrySize:][:vhdxRegionEntrySize]
		if bytes.Equal(e[:16], vhdxMetadataRegionGUID) {
			if regionOff >= 0 {
				return errors.New("two VHDX metadata regions")
			}
			regionOff = int64(binary.LittleEndian.Uint64(e[16:]) & math.MaxInt64)
			regionLen = int64(binary.LittleEndian.Uint32(e[24:]))
		}
	}
	if regionOff < 0 {
		return errors.New("no VHDX metadata region")
	}
	if regionLen < vhdxMetadataTableSize {
		return fmt.Errorf("VHDX metadata region of %d bytes", regionLen)
	}
	md, err := m.read(regionOff, regionLen)
	if err != nil {
		return err
	}
	if string(md[:8]) != vhdxMetadataSignature {
		return errors.New("no VHDX metadata table")
	}
	items := int64(binary.LittleEndian.Uint16(md[vhdxOffMetadataCount:]))
	if items > vhdxMaxMetadataItems {
		return fmt.Errorf("VHDX metadata table of %d items", items)
	}
	at := int64(-1)
	for i := range items {
		e := md[vhdxMetadataEntries+i*vhdxMetadataEntrySize:][:vhdxMetadataEntrySize]
		if !bytes.Equal(e[:16], vhdxPage83GUID) {
			continue
		}
		off, n := int64(binary.LittleEndian.Uint32(e[16:])), int64(binary.LittleEndian.Uint32(e[20:]))
		// Items are past the table, and inside the region.
		if at >= 0 || n != vhdxPage83Size || off < vhdxMetadataTableSize || off > regionLen-n {
			return fmt.Errorf("VHDX Page 83 item of %d bytes at %d", n, off)
		}
		at = off
	}
	if at < 0 {
		return errors.New("no VHDX Page 83 item")
	}
	return m.write(regionOff+at, ids.replace("vhdx/page83", md[at:at+vhdxPage83Size], guidLayout))
}
