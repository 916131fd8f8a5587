package exporter

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/c2vm/c2vm/exporter/ext4"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/cespare/xxhash/v2"
)

// rootSink writes the flattened entries into the ext4 writer and digests
// them: the disk's ids derive from what went into it. The digest covers
// every entry's metadata exactly as written and, per file, an xxhash of its
// bytes (a cryptographic hash of every byte would cost more than writing
// them; ids need to differ between inputs, not to resist forgery).
type rootSink struct {
	w     *ext4.Writer
	epoch *time.Time // SOURCE_DATE_EPOCH: no time after it
	sum   hash.Hash
	xx    *xxhash.Digest
	buf   [8]byte
}

func newRootSink(w *ext4.Writer, epoch *time.Time) *rootSink {
	return &rootSink{w: w, epoch: epoch, sum: sha256.New(), xx: xxhash.New()}
}

// Add implements rootfs.Sink.
func (s *rootSink) Add(e *rootfs.Entry, data io.Reader) error {
	mtime := e.Mtime
	if s.epoch != nil && mtime.After(*s.epoch) {
		mtime = *s.epoch
	}
	s.digest(e, mtime)
	if e.Kind == rootfs.KindHardlink {
		return s.wrap(e, s.w.Link(e.Path, e.Link))
	}
	f := &ext4.File{Mode: modeBits(e.Kind) | e.Mode, UID: e.UID, GID: e.GID, Mtime: mtime, Size: e.Size,
		Linkname: e.Link, DevMajor: e.DevMajor, DevMinor: e.DevMinor}
	if e.Data != nil {
		f.Data = make([]ext4.Segment, len(e.Data))
		for i, sg := range e.Data {
			f.Data[i] = ext4.Segment{Off: sg.Off, Len: sg.Len}
		}
	}
	for _, x := range e.Xattrs {
		f.Xattrs = append(f.Xattrs, ext4.Xattr{Name: x.Name, Value: x.Value})
	}
	if data != nil {
		s.xx.Reset()
		data = io.TeeReader(data, s.xx)
	}
	err := s.w.Create(e.Path, f, data)
	if data != nil && err == nil {
		s.u64(s.xx.Sum64())
	}
	return s.wrap(e, err)
}

func (s *rootSink) wrap(e *rootfs.Entry, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("writing /%s: %w", e.Path, err)
}

// digest feeds an entry's metadata, as written, to the digest.
func (s *rootSink) digest(e *rootfs.Entry, mtime time.Time) {
	s.str(e.Path)
	s.u64(uint64(e.Kind)<<32 | uint64(e.Mode))
	s.u64(uint64(e.UID)<<32 | uint64(e.GID))
	s.u64(uint64(mtime.UnixNano()))
	s.u64(uint64(e.Size))
	s.u64(uint64(len(e.Data)))
	for _, sg := range e.Data {
		s.u64(uint64(sg.Off))
		s.u64(uint64(sg.Len))
	}
	s.str(e.Link)
	s.u64(uint64(e.DevMajor)<<32 | uint64(e.DevMinor))
	s.u64(uint64(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		s.str(x.Name)
		s.str(string(x.Value))
	}
}

func (s *rootSink) u64(v uint64) {
	binary.LittleEndian.PutUint64(s.buf[:], v)
	s.sum.Write(s.buf[:])
}

func (s *rootSink) str(v string) {
	s.u64(uint64(len(v)))
	io.WriteString(s.sum, v)
}

// Sum is the digest of everything added.
func (s *rootSink) Sum() []byte { return s.sum.Sum(nil) }

// modeBits is the file-type part of st_mode.
func modeBits(k rootfs.Kind) uint32 {
	switch k {
	case rootfs.KindDir:
		return 0o040000
	case rootfs.KindSymlink:
		return 0o120000
	case rootfs.KindChar:
		return 0o020000
	case rootfs.KindBlock:
		return 0o060000
	case rootfs.KindFifo:
		return 0o010000
	}
	return 0o100000
}
