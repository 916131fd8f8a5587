package exporter

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
)

// tarStream writes the normalized tar that `mke2fs -d -` reads: clean
// relative names, numeric owners only, xattrs as PAX records, nothing else
// from the source's headers. Everything written is also hashed: the digest is
// the input's content, from which the disk's ids derive.
type tarStream struct {
	tw  *tar.Writer
	sum hash.Hash
	buf []byte
	// xattrs mke2fs does not take from a tar (it keeps only
	// security.capability); they are set afterwards with debugfs.
	xattrs []xattr
}

type xattr struct{ path, name, value string }

func newTarStream(w io.Writer) *tarStream {
	sum := sha256.New()
	return &tarStream{tw: tar.NewWriter(io.MultiWriter(w, sum)), sum: sum, buf: make([]byte, 1<<20)}
}

// normalize copies the fields mke2fs uses from a source header.
func normalize(name string, src *tar.Header) *tar.Header {
	h := &tar.Header{
		Typeflag: src.Typeflag,
		Name:     name,
		Linkname: src.Linkname,
		Size:     src.Size,
		Mode:     src.Mode & 0o7777,
		Uid:      src.Uid,
		Gid:      src.Gid,
		ModTime:  src.ModTime,
		Devmajor: src.Devmajor,
		Devminor: src.Devminor,
		Format:   tar.FormatPAX,
	}
	if h.Typeflag == tar.TypeRegA {
		h.Typeflag = tar.TypeReg
	}
	for k, v := range src.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[k] = v
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		h.Name = strings.TrimSuffix(name, "/") + "/"
		if name == "" {
			h.Name = "./"
		}
		h.Size = 0
	case tar.TypeReg:
	default:
		h.Size = 0
	}
	return h
}

// dir writes a directory entry.
func (s *tarStream) dir(name string, src *tar.Header) error {
	h := normalize(name, src)
	s.noteXattrs(name, h)
	return s.tw.WriteHeader(h)
}

// noteXattrs keeps the xattrs mke2fs would drop for a second pass. SELinux
// labels are left out: they belong to the build host; the guest relabels.
func (s *tarStream) noteXattrs(name string, h *tar.Header) {
	keys := make([]string, 0, len(h.PAXRecords))
	for k := range h.PAXRecords {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := h.PAXRecords[k]
		attr := strings.TrimPrefix(k, "SCHILY.xattr.")
		if attr == "security.capability" || attr == "security.selinux" {
			continue
		}
		s.xattrs = append(s.xattrs, xattr{path: "/" + name, name: attr, value: v})
	}
}

// entry writes a non-directory entry; for regular files its content is read
// from r, exactly src.Size bytes.
func (s *tarStream) entry(name string, src *tar.Header, r io.Reader) error {
	h := normalize(name, src)
	s.noteXattrs(name, h)
	if err := s.tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return nil
	}
	n, err := io.CopyBuffer(s.tw, io.LimitReader(r, h.Size), s.buf)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if n != h.Size {
		return fmt.Errorf("reading %s: file is %d bytes, expected %d (did it change during assembly?)", name, n, h.Size)
	}
	return nil
}

// link writes a hardlink entry to an already written file.
func (s *tarStream) link(name, target string, src *tar.Header) error {
	h := normalize(name, src)
	h.Typeflag, h.Linkname, h.Size = tar.TypeLink, target, 0
	return s.tw.WriteHeader(h)
}

// close ends the archive and returns the digest of everything written.
func (s *tarStream) close() ([]byte, error) {
	if err := s.tw.Close(); err != nil {
		return nil, err
	}
	return s.sum.Sum(nil), nil
}
