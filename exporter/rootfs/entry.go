// Package rootfs reads a root filesystem from where users keep one — a
// directory, a rootfs tar, an OCI image layout, a docker save archive — and
// hands it on as a stream of validated entries, layers already flattened.
//
// Everything read here is hostile input: names, link targets, xattrs, sizes,
// sparse maps, digests. Nothing is extracted onto the host and no link is
// ever followed on the host; memory stays bounded whatever a header declares
// (per entry, a compact node and at most maxXattrBytes of xattrs; no header
// is kept). The limits below are where a clear error replaces the attempt.
package rootfs

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Limits on what an image may declare. They match what ext4 and Linux can
// hold, so an entry within them can always be written.
const (
	MaxPathBytes  = 4096          // PATH_MAX
	MaxNameBytes  = 255           // one path component (ext4, NAME_MAX)
	MaxLinkBytes  = 4095          // a symlink target, without the NUL
	MaxFileBytes  = 16<<40 - 4096 // ext4 with 4 KiB blocks and extents
	maxXattrBytes = 64 << 10      // all xattrs of one entry (XATTR_SIZE_MAX)
)

// MaxEntries bounds the flattened tree, whose nodes live in memory (about
// 210 bytes each here, as much again in the ext4 writer): the default keeps
// assembly within 150 MiB whatever an image holds. C2VM_MAX_ENTRIES raises
// it for images that really have more files.
var MaxEntries = envInt("C2VM_MAX_ENTRIES", 400_000)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Kind is an entry's file type.
type Kind uint8

const (
	KindDir Kind = iota + 1
	KindReg
	KindSymlink
	KindHardlink // Link names an entry already streamed
	KindChar
	KindBlock
	KindFifo
)

func (k Kind) String() string {
	return [...]string{"?", "directory", "file", "symlink", "hardlink", "character device", "block device", "fifo"}[k]
}

// Segment is a range of a sparse file that holds data; the rest are holes.
type Segment struct{ Off, Len int64 }

// Xattr is one extended attribute, as the kernel's VFS names and encodes it
// (POSIX ACLs in the posix_acl_xattr format).
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one object of the root filesystem.
type Entry struct {
	Path     string // clean, relative, no "..": "" is the root directory
	Kind     Kind
	Mode     uint32 // permission bits with setuid, setgid and sticky: 07777
	UID, GID uint32
	Mtime    time.Time
	Size     int64     // logical size of a regular file
	Data     []Segment // where a sparse file's data lies; nil: all of it
	Link     string    // symlink target, or the hardlink's target path
	DevMajor uint32
	DevMinor uint32
	Xattrs   []Xattr // sorted by name
}

// DataBytes is how many bytes of content a regular file carries.
func (e *Entry) DataBytes() int64 {
	if e.Kind != KindReg {
		return 0
	}
	if e.Data == nil {
		return e.Size
	}
	var n int64
	for _, s := range e.Data {
		n += s.Len
	}
	return n
}

// Sink receives the flattened tree: parents before children, a hardlink's
// target before the link. A directory may come a second time with its final
// metadata (its xattrs included); the sink updates it and keeps its
// children. data gives exactly DataBytes() bytes for a regular file — the
// data segments back to back — and is nil otherwise.
type Sink interface {
	Add(e *Entry, data io.Reader) error
}

// CheckName validates a clean relative path: UTF-8 is not required (Linux
// names are bytes), but NUL and over-long names or components are refused.
func CheckName(p string) error {
	if len(p) > MaxPathBytes {
		return fmt.Errorf("path of %d bytes, more than Linux's %d: %s", len(p), MaxPathBytes, quote(p))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("path %s holds a NUL byte", quote(p))
	}
	for rest := p; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if len(c) > MaxNameBytes {
			return fmt.Errorf("path %s has a component of %d bytes, more than ext4's %d", quote(p), len(c), MaxNameBytes)
		}
	}
	return nil
}

// checkLink validates a symlink target: any bytes but NUL, at most
// MaxLinkBytes. Targets are data: they are never resolved on the host.
func checkLink(name, target string) error {
	if target == "" {
		return fmt.Errorf("symlink %s has an empty target", quote(name))
	}
	if len(target) > MaxLinkBytes || strings.IndexByte(target, 0) >= 0 {
		return fmt.Errorf("symlink %s has a target of %d bytes or with a NUL byte (at most %d)", quote(name), len(target), MaxLinkBytes)
	}
	return nil
}

// quote shortens a hostile name for an error message.
func quote(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%q…", s[:120])
	}
	return fmt.Sprintf("%q", s)
}
