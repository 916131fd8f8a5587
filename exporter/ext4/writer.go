package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Params shape the filesystem.
type Params struct {
	Offset   int64 // byte offset of the filesystem in the file (multiple of 4096)
	Size     int64 // filesystem bytes, rounded down to 4 KiB (less a last block group too small for its own metadata)
	Inodes   int64 // at least this many inodes, the 11 reserved ones included
	Label    string
	UUID     [16]byte // initial; SetUUID may replace it before Close
	HashSeed [16]byte
	Time     time.Time // superblock times; zero means the Unix epoch
}

// Segment is a data range of a sparse file.
type Segment struct{ Off, Len int64 }

// File is an entry's metadata.
type File struct {
	Mode                        uint32 // full st_mode: S_IFREG|S_IFDIR|S_IFLNK|S_IFCHR|S_IFBLK|S_IFIFO | 07777
	UID, GID                    uint32
	Atime, Mtime, Ctime, Crtime time.Time // zero Crtime/Atime/Ctime: use Mtime; zero Mtime: Params.Time
	Size                        int64     // logical size (regular files)
	Data                        []Segment // nil: one segment [0, Size); otherwise sorted, non-overlapping, within Size; holes between
	Linkname                    string    // symlink target
	DevMajor, DevMinor          uint32
	Xattrs                      []Xattr // VFS names and values; ACLs in VFS format
}

// Xattr is an extended attribute by its VFS name.
type Xattr struct {
	Name  string
	Value []byte
}

// ErrNoSpace reports that the filesystem ran out of blocks or inodes.
var ErrNoSpace = errors.New("no space left on the filesystem")

var errTooManyInodes = errors.New("too many inodes for the size")

// Writer writes one filesystem. It is not safe for concurrent use.
type Writer struct {
	p        Params
	l        *layout
	alloc    *allocator
	out      *output
	seed     uint32 // metadata checksum seed, from the initial UUID
	hashSeed [4]uint32
	uuid     [16]byte
	fsTime   timestamp
	inodes   []*inode           // by number - 1; nil for unused reserved inodes
	dirs     map[string]uint32  // directory path -> inode
	names    map[nameKey]uint32 // (parent, name) -> inode, for every entry
	xb       xblocks            // xattr blocks written, for sharing and Close
	err      error              // sticky: the output is inconsistent
	spoiled  bool               // a Create failed after writing data
	closed   bool
}

type nameKey struct {
	parent uint32
	name   string
}

// NewWriter starts a filesystem in f at p.Offset. The region must read as
// zeros (freshly truncated); the writer never reads it, and writes only
// inside it. f.WriteAt is called from one goroutine at a time, not
// necessarily the caller's.
func NewWriter(f io.WriterAt, p Params) (*Writer, error) {
	switch {
	case p.Offset < 0 || p.Offset%blockSize != 0:
		return nil, fmt.Errorf("ext4: offset %d is not a multiple of %d", p.Offset, blockSize)
	case p.Size < 0:
		return nil, fmt.Errorf("ext4: negative size %d", p.Size)
	case p.Inodes < 0:
		return nil, fmt.Errorf("ext4: negative inode count %d", p.Inodes)
	case len(p.Label) > 16:
		return nil, fmt.Errorf("ext4: label %q is longer than 16 bytes", p.Label)
	}
	if p.Time.IsZero() {
		p.Time = time.Unix(0, 0)
	}
	g, err := newGeometry(uint64(p.Size/blockSize), uint64(p.Inodes))
	if err != nil {
		return nil, fmt.Errorf("ext4: %w", err)
	}
	l, err := newLayout(g)
	if err != nil {
		return nil, fmt.Errorf("ext4: %w", err)
	}
	w := &Writer{
		p: p, l: l, alloc: newAllocator(l), out: newOutput(f, p.Offset),
		seed: crc32c(^uint32(0), p.UUID[:]), uuid: p.UUID, fsTime: stamp(p.Time),
		inodes: make([]*inode, firstIno),
		dirs:   map[string]uint32{"": rootIno},
		names:  map[nameKey]uint32{},
		xb:     newXblocks(),
	}
	for i := range w.hashSeed {
		w.hashSeed[i] = binary.LittleEndian.Uint32(p.HashSeed[4*i:])
	}
	if err := w.initSpecial(); err != nil {
		w.out.close()
		return nil, fmt.Errorf("ext4: %w", err)
	}
	return w, nil
}

// initSpecial makes the root, the journal and lost+found. The journal comes
// first on disk, right after group 0's metadata, so file data follows it.
func (w *Writer) initSpecial() error {
	t := w.fsTime
	w.inodes[rootIno-1] = &inode{mode: sIFDIR | 0o755, links: 2, flags: flagExtents,
		atime: t, mtime: t, ctime: t, crtime: t, dir: &dirData{parent: rootIno}}
	exts, err := w.alloc.takeExtents(0, w.l.journal)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	w.inodes[journalIno-1] = &inode{mode: sIFREG | 0o600, links: 1, flags: flagExtents,
		size: w.l.journal * blockSize, exts: exts, dataBlocks: w.l.journal,
		atime: t, mtime: t, ctime: t, crtime: t}
	lf := &inode{mode: sIFDIR | 0o700, links: 2, flags: flagExtents,
		atime: t, mtime: t, ctime: t, crtime: t, dir: &dirData{parent: rootIno}}
	w.inodes[lostFoundIno-1] = lf
	w.addEntry(rootIno, "lost+found", lostFoundIno, ftDir)
	w.dirs["lost+found"] = lostFoundIno
	w.inodes[rootIno-1].dir.subdirs++
	return nil
}

// SetUUID replaces the UUID the superblock records. Checksums stay seeded
// by the initial UUID (metadata_csum_seed), as after tune2fs -U.
func (w *Writer) SetUUID(u [16]byte) { w.uuid = u }

// Create adds the entry at path (clean, relative, "" for the root) whose
// parent already exists. data holds exactly the bytes of f's data segments
// concatenated, for regular files. An existing directory given again as a
// directory takes the new metadata and keeps its children. An entry
// rejected before its data is read (bad name, mode, size or xattr, no
// space) leaves the writer usable; a failure while reading or writing data
// spoils it.
func (w *Writer) Create(path string, f *File, data io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("ext4: %q: no metadata", path)
	}
	if err := w.create(path, f, data); err != nil {
		err = fmt.Errorf("ext4: %q: %w", path, err)
		if w.spoiled {
			w.err = err
		}
		return err
	}
	return nil
}

// Link adds path as a hardlink to the existing non-directory target.
func (w *Writer) Link(path, target string) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.link(path, target); err != nil {
		return fmt.Errorf("ext4: link %q to %q: %w", path, target, err)
	}
	return nil
}

// Close lays out directories and extent trees after the file data, writes
// every inode table, bitmap, descriptor and superblock, and the user counts
// of shared xattr blocks.
// It must be called, also after an error, to stop the writing goroutine.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("ext4: writer is closed")
	}
	w.closed = true
	if w.err != nil {
		w.out.close()
		return w.err
	}
	sb, err := w.finish()
	if cerr := w.out.close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.patchSharedXattrBlocks()
	}
	if err == nil {
		// The primary superblock goes last, 1024 bytes into block 0 (whose
		// first 1024 bytes are left alone).
		_, err = w.out.f.WriteAt(sb, w.p.Offset+1024)
	}
	if err != nil {
		w.err = fmt.Errorf("ext4: %w", err)
	}
	return w.err
}

func (w *Writer) usable() error {
	if w.closed {
		return errors.New("ext4: writer is closed")
	}
	if w.err != nil {
		return w.err
	}
	if err := w.out.failed(); err != nil {
		w.err = fmt.Errorf("ext4: %w", err)
		return w.err
	}
	return nil
}

func (w *Writer) finish() ([]byte, error) {
	if err := w.writeDirs(); err != nil {
		return nil, err
	}
	for i, in := range w.inodes {
		if in != nil && in.flags&flagExtents != 0 {
			if err := w.writeExtentTree(uint32(i+1), in); err != nil {
				return nil, err
			}
		}
	}
	return w.writeMetadata(), nil
}

// splitPath checks a clean relative path and splits off its last name.
func splitPath(p string) (parent, name string, err error) {
	if p == "" {
		return "", "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if err := checkName(c); err != nil {
			return "", "", err
		}
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:], nil
	}
	return "", p, nil
}

func checkName(n string) error {
	switch {
	case n == "":
		return errors.New("empty name (path not clean and relative)")
	case n == "." || n == "..":
		return fmt.Errorf("name %q", n)
	case len(n) > 255:
		return fmt.Errorf("name of %d bytes (ext4 allows 255)", len(n))
	case strings.IndexByte(n, 0) >= 0:
		return errors.New("NUL in name")
	}
	return nil
}

// parentDir finds the directory that holds a new name.
func (w *Writer) parentDir(parent string) (uint32, error) {
	if ino, ok := w.dirs[parent]; ok {
		return ino, nil
	}
	if _, err := w.lookup(parent); err == nil {
		return 0, fmt.Errorf("parent %q is not a directory", parent)
	}
	return 0, fmt.Errorf("parent %q does not exist", parent)
}

// lookup finds the inode at path.
func (w *Writer) lookup(p string) (uint32, error) {
	if ino, ok := w.dirs[p]; ok {
		return ino, nil
	}
	parent, name, err := splitPath(p)
	if err != nil {
		return 0, err
	}
	pino, ok := w.dirs[parent]
	if !ok {
		return 0, fmt.Errorf("%q does not exist", p)
	}
	ino, ok := w.names[nameKey{pino, name}]
	if !ok {
		return 0, fmt.Errorf("%q does not exist", p)
	}
	return ino, nil
}

func (w *Writer) addEntry(parent uint32, name string, ino uint32, typ uint8) {
	d := w.inodes[parent-1].dir
	name = strings.Clone(name) // keep the name, not the caller's whole path
	d.ents = append(d.ents, dirent{name: name, ino: ino, typ: typ})
	w.names[nameKey{parent, name}] = ino
}

// inodeLeft reports whether a new inode can be had.
func (w *Writer) inodeLeft() error {
	if total := w.l.groups * w.l.ipg; uint64(len(w.inodes)) >= total {
		return fmt.Errorf("%w: no free inode (all %d in use)", ErrNoSpace, total)
	}
	return nil
}

// newInode takes the next inode number.
func (w *Writer) newInode(in *inode) (uint32, error) {
	if err := w.inodeLeft(); err != nil {
		return 0, err
	}
	w.inodes = append(w.inodes, in)
	return uint32(len(w.inodes)), nil
}

func (w *Writer) link(p, target string) error {
	parent, name, err := splitPath(p)
	if err != nil || p == "" {
		return fmt.Errorf("bad path: %v", err)
	}
	tino, err := w.lookup(target)
	if err != nil {
		return err
	}
	tin := w.inodes[tino-1]
	if tin.dir != nil || tino < firstIno {
		return errors.New("target is a directory")
	}
	pino, err := w.parentDir(parent)
	if err != nil {
		return err
	}
	if _, ok := w.names[nameKey{pino, name}]; ok {
		return errors.New("path exists")
	}
	if tin.links >= maxLinks {
		return fmt.Errorf("target has %d links already", tin.links)
	}
	tin.links++
	w.addEntry(pino, name, tino, fileType(tin.mode))
	return nil
}

func fileType(mode uint16) uint8 {
	switch uint32(mode) & sIFMT {
	case sIFREG:
		return ftReg
	case sIFDIR:
		return ftDir
	case sIFCHR:
		return ftChr
	case sIFBLK:
		return ftBlk
	case sIFIFO:
		return ftFifo
	case sIFLNK:
		return ftSymlink
	}
	return 0
}
