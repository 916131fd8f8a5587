package ext4

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

const maxSymlink = blockSize - 1 // the kernel's limit for a symlink in one block

func (w *Writer) create(p string, f *File, data io.Reader) error {
	parent, name, err := splitPath(p)
	if err != nil {
		return err
	}
	typ := f.Mode & sIFMT
	if fileType(uint16(f.Mode)) == 0 || f.Mode&^(sIFMT|0o7777) != 0 {
		if typ == sIFSOCK {
			return errors.New("sockets cannot be stored")
		}
		return fmt.Errorf("unsupported mode %#o", f.Mode)
	}
	xs, err := splitXattrs(f.Xattrs, typ == sIFDIR)
	if err != nil {
		return err
	}
	if p == "" {
		if typ != sIFDIR {
			return errors.New("the root must be a directory")
		}
		return w.update(w.inodes[rootIno-1], f, xs)
	}
	pino, err := w.parentDir(parent)
	if err != nil {
		return err
	}
	if ino, ok := w.names[nameKey{pino, name}]; ok {
		if old := w.inodes[ino-1]; old.dir != nil && typ == sIFDIR {
			return w.update(old, f, xs)
		}
		return errors.New("path exists")
	}
	// Checked before any block is taken for the entry.
	if err := w.inodeLeft(); err != nil {
		return err
	}
	in := &inode{}
	w.setMeta(in, f, xs.inInode)
	switch typ {
	case sIFREG:
		return w.createFile(pino, name, in, f, data, xs.inBlock)
	case sIFDIR:
		in.flags = flagExtents
		in.dir = &dirData{parent: pino}
	case sIFLNK:
		if err := w.symlink(in, f.Linkname); err != nil {
			return err
		}
	case sIFCHR, sIFBLK:
		if f.DevMajor >= 1<<12 || f.DevMinor >= 1<<20 {
			return fmt.Errorf("device %d:%d beyond 12-bit major, 20-bit minor", f.DevMajor, f.DevMinor)
		}
		devNumber(&in.iblock, f.DevMajor, f.DevMinor)
	}
	return w.register(pino, name, p, in, xs.inBlock)
}

// update gives an existing directory new metadata and xattrs. Its old
// xattr block loses a user once the new one is in hand.
func (w *Writer) update(in *inode, f *File, xs xattrSet) error {
	b, err := w.xattrBlockFor(xs.inBlock)
	if err != nil {
		return err
	}
	w.xb.release(in.xblock)
	in.xblock = b
	w.setMeta(in, f, xs.inInode)
	return nil
}

// register gives a new inode its xattr block, its number and its name in
// the parent.
func (w *Writer) register(pino uint32, name, p string, in *inode, xblock []xentry) error {
	b, err := w.xattrBlockFor(xblock)
	if err != nil {
		return err
	}
	in.xblock = b
	ino, err := w.newInode(in)
	if err != nil {
		w.xb.release(b)
		return err
	}
	in.links = 1
	if in.dir != nil {
		in.links = 2
		w.dirs[p] = ino
		w.inodes[pino-1].dir.subdirs++
	}
	w.addEntry(pino, name, ino, fileType(in.mode))
	return nil
}

// setMeta copies mode, owner, times and the xattrs that go in the inode.
func (w *Writer) setMeta(in *inode, f *File, inInode []xentry) {
	in.mode = uint16(f.Mode)
	in.uid, in.gid = f.UID, f.GID
	mt := w.fsTime
	if !f.Mtime.IsZero() {
		mt = stamp(f.Mtime)
	}
	or := func(t time.Time) timestamp {
		if t.IsZero() {
			return mt
		}
		return stamp(t)
	}
	in.mtime = mt
	in.atime = or(f.Atime)
	in.ctime = or(f.Ctime)
	in.crtime = or(f.Crtime)
	in.xattrs = inInode
}

// symlink stores a target under 60 bytes in i_block (a fast symlink). It
// stores a longer one in a data block.
func (w *Writer) symlink(in *inode, target string) error {
	switch {
	case target == "":
		return errors.New("empty symlink target")
	case len(target) > maxSymlink:
		return fmt.Errorf("symlink target of %d bytes (at most %d)", len(target), maxSymlink)
	case strings.IndexByte(target, 0) >= 0:
		return errors.New("NUL in symlink target")
	}
	in.size = uint64(len(target))
	if len(target) < len(in.iblock) {
		copy(in.iblock[:], target)
		return nil
	}
	exts, err := w.alloc.takeExtents(0, 1)
	if err != nil {
		return err
	}
	w.out.write(exts[0].pblk, []byte(target))
	in.exts, in.dataBlocks, in.flags = exts, 1, flagExtents
	return nil
}

// createFile checks a regular file's layout and space, then streams its
// data. Errors after the first byte is written spoil the writer.
func (w *Writer) createFile(pino uint32, name string, in *inode, f *File, data io.Reader, xblock []xentry) error {
	runs, err := dataRuns(f.Size, f.Data)
	if err != nil {
		return err
	}
	var need, bytes uint64
	for _, r := range runs {
		need += r.n
	}
	if len(xblock) > 0 {
		need++ // unless shared: a bound is enough here
	}
	if free := w.alloc.free(); need > free {
		return fmt.Errorf("%w: file needs %d blocks, %d free", ErrNoSpace, need, free)
	}
	segs := f.Data
	if segs == nil && f.Size > 0 {
		segs = []Segment{{0, f.Size}}
	}
	for _, s := range segs {
		bytes += uint64(s.Len)
	}
	if bytes > 0 && data == nil {
		return errors.New("no data reader for a file with data")
	}
	in.flags = flagExtents
	in.size = uint64(f.Size)
	if err := w.register(pino, name, "", in, xblock); err != nil {
		return err
	}
	if err := w.writeData(in, runs, &segReader{segs: segs, r: data}); err != nil {
		w.spoiled = true
		return err
	}
	return nil
}

// writeData allocates each run's blocks and fills them from the reader.
func (w *Writer) writeData(in *inode, runs []span, sr *segReader) error {
	for _, r := range runs {
		exts, err := w.alloc.takeExtents(r.start, r.n)
		if err != nil {
			return err
		}
		for _, e := range exts {
			for done := uint64(0); done < uint64(e.n); {
				dst := w.out.next(e.pblk+done, uint64(e.n)-done)
				if err := sr.fill(dst, int64(uint64(e.lblk)+done)*blockSize); err != nil {
					return err
				}
				done += uint64(len(dst)) / blockSize
			}
		}
		in.exts = append(in.exts, exts...)
		in.dataBlocks += r.n
	}
	return w.out.failed()
}
