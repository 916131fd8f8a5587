package initramfs

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// The kernel unpacks "newc" cpio archives (SVR4, no checksum). This writer
// is a few lines rather than a library because the archive needs a device
// node (/dev/console, for the kernel to open before /init runs) and full
// control of every header field for reproducibility.

// File type bits of a cpio mode.
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// entry is one archive member. Data is produced when the entry is written,
// so that at most one module is in memory at a time.
type entry struct {
	name         string // no leading slash
	mode         uint32 // type and permissions
	major, minor uint32 // of a device node
	data         func() ([]byte, error)
}

// archive collects entries and writes them sorted, with their parent
// directories, fixed owners (root), times (0) and inode numbers.
type archive struct{ entries map[string]entry }

func newArchive() *archive { return &archive{entries: map[string]entry{}} }

func (a *archive) add(e entry) {
	a.entries[e.name] = e
	for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = entry{name: d, mode: modeDir | 0o755}
		}
	}
}

func (a *archive) addFile(name string, perm uint32, data func() ([]byte, error)) {
	a.add(entry{name: name, mode: modeFile | perm, data: data})
}

// names sorts entries; a parent sorts before its children.
func (a *archive) names() []string {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *archive) writeTo(w io.Writer) error {
	for i, n := range a.names() {
		e := a.entries[n]
		var data []byte
		if e.data != nil {
			var err error
			if data, err = e.data(); err != nil {
				return err
			}
		}
		nlink := 1
		if e.mode&modeDir == modeDir {
			nlink = 2
		}
		if err := writeHeader(w, uint32(i+1), e.mode, nlink, len(data), e.major, e.minor, e.name); err != nil {
			return err
		}
		if err := writePadded(w, data); err != nil {
			return err
		}
	}
	return writeHeader(w, 0, 0, 1, 0, 0, 0, "TRAILER!!!")
}

// writeHeader writes a newc header and the padded name. Fields: magic,
// ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
// rdevmajor, rdevminor, namesize (with NUL), check.
func writeHeader(w io.Writer, ino, mode uint32, nlink, size int, major, minor uint32, name string) error {
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("cpio: bad name %q", name)
	}
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
	return writePadded(w, append([]byte(h+name), 0))
}

// writePadded writes b and zeros up to a multiple of 4 bytes (the header
// is 110 bytes, so name padding counts from the header's start).
func writePadded(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(b)%4)%4))
	return err
}
