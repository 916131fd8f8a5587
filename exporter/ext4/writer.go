package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Params shape the filesystem [NewWriter] writes.
type Params struct {
	// Offset is the filesystem's byte offset in the file, a multiple of
	// 4096.
	Offset int64
	// Size is the filesystem's size in bytes, rounded down to 4 KiB. A
	// last block group too small for its own metadata is left out.
	Size int64
	// Inodes is the least number of inodes, the 11 reserved ones included.
	Inodes int64
	// Label is the volume name, at most 16 bytes.
	Label string
	// UUID is the initial UUID: it seeds every metadata checksum.
	// [Writer.SetUUID] may replace the UUID the superblock records.
	UUID     [16]byte
	HashSeed [16]byte // the seed of directory hashes
	// Time sets the superblock's times and those of the inodes the writer
	// makes itself (root, journal, lost+found). It stands in for a zero
	// [File.Mtime]. Zero means the Unix epoch.
	Time time.Time
}

// Segment is a data range of a sparse file, in bytes.
type Segment struct{ Off, Len int64 }

// File is an entry's metadata.
type File struct {
	// Mode is the full st_mode: one of S_IFREG, S_IFDIR, S_IFLNK,
	// S_IFCHR, S_IFBLK or S_IFIFO, and permission bits (07777).
	Mode     uint32
	UID, GID uint32
	// A zero Atime, Ctime or Crtime takes Mtime. A zero Mtime takes
	// [Params.Time].
	Atime, Mtime, Ctime, Crtime time.Time
	Size                        int64 // logical size (regular files)
	// Data lists the segments that hold data, sorted, not overlapping and
	// within Size. The ranges between them are holes. Nil means one
	// segment [0, Size).
	Data               []Segment
	Linkname           string // symlink target
	DevMajor, DevMinor uint32
	// Xattrs are extended attributes by VFS name, ACLs in the VFS format.
	Xattrs []Xattr
}

// Xattr is an extended attribute by its VFS name.
type Xattr struct {
	Name  string
	Value []byte
}

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
	inodes   []*inode           // by number - 1, nil for unused reserved inodes
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
// zeros (freshly truncated). The writer never reads it and writes only
// inside it. f.WriteAt is called from one goroutine at a time, not
// necessarily the caller's.
func NewWriter(f io.WriterAt, p Params) (*Writer, error) {
	switch {
	case p.Offset < 0 || p.Offset%blockSize != 0:
		return nil, errorf("offset %d is not a multiple of %d", p.Offset, blockSize)
	case p.Size < 0:
		return nil, errorf("negative size %d", p.Size)
	case p.Inodes < 0:
		return nil, errorf("negative inode count %d", p.Inodes)
	case len(p.Label) > labelLen:
		return nil, errorf("label %q is longer than %d bytes", p.Label, labelLen)
	}
	if p.Time.IsZero() {
		p.Time = time.Unix(0, 0)
	}
	g, err := newGeometry(uint64(p.Size/blockSize), uint64(p.Inodes))
	if err != nil {
		return nil, errorf("%w", err)
	}
	l, err := newLayout(g)
	if err != nil {
		return nil, errorf("%w", err)
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
		return nil, errorf("%w", err)
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

// SetUUID replaces the UUID the superblock records. It takes effect at
// [Writer.Close]. Checksums stay seeded by [Params.UUID]
// (metadata_csum_seed), as after tune2fs -U.
func (w *Writer) SetUUID(u [16]byte) { w.uuid = u }

// Create adds the entry at path, whose parent must exist. The path is clean
// and relative, and "" is the root. For a regular file, data holds exactly the
// bytes of its [File.Data] segments, concatenated. An existing directory
// given again as a directory takes the new metadata and keeps its
// children. An entry rejected before its data is read (bad name, mode,
// size or xattr, no space) leaves the writer usable. A failure while
// reading or writing data spoils it: every later call returns that error.
func (w *Writer) Create(path string, f *File, data io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if f == nil {
		return errorf("%q: no metadata", path)
	}
	if err := w.create(path, f, data); err != nil {
		err = errorf("%q: %w", path, err)
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
		return errorf("link %q to %q: %w", path, target, err)
	}
	return nil
}

// Close lays out directories and extent trees after the file data. It
// writes every inode table, bitmap, descriptor and superblock, and the user
// counts of shared xattr blocks. Close must be called, also after an
// error, to stop the writing goroutine.
func (w *Writer) Close() error {
	if w.closed {
		return errClosed
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
		// The primary superblock goes last, sbOffset bytes into block 0.
		// The bytes before it are left alone.
		_, err = w.out.f.WriteAt(sb[:], w.p.Offset+sbOffset)
	}
	if err != nil {
		w.err = errorf("%w", err)
	}
	return w.err
}

// usable returns the error that stops a call before it starts: a closed or
// spoiled writer, or a failed write.
func (w *Writer) usable() error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	if err := w.out.failed(); err != nil {
		w.err = errorf("%w", err)
		return w.err
	}
	return nil
}

// finish writes everything Close writes but the primary superblock, which
// it returns.
func (w *Writer) finish() (*ext4SuperBlock, error) {
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
	case len(n) > maxNameLen:
		return fmt.Errorf("name of %d bytes (ext4 allows %d)", len(n), maxNameLen)
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
