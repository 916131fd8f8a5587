package exporter

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dirSource is a root filesystem tree on the host. Owners, modes, device
// numbers and xattrs come from lstat and the files' own xattrs; links are
// data, never followed.
type dirSource struct {
	root    string
	entries []dirEntry
}

type dirEntry struct {
	name string // clean relative path
	hdr  *tar.Header
	link string // for hardlinks: the first path with the same inode
}

func (s *dirSource) String() string { return "directory " + s.root }

// Scan walks the tree in name order, which puts parents first.
func (s *dirSource) Scan(ctx context.Context) (*Inventory, error) {
	inv := newInventory()
	seen := map[[2]uint64]string{}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return s.readErr(p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		if rel == "." {
			rel = ""
		}
		rel = filepath.ToSlash(rel)
		hdr, st, err := s.header(p, rel)
		if err != nil {
			return err
		}
		e := dirEntry{name: rel, hdr: hdr}
		if st != nil && hdr.Typeflag == tar.TypeReg && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok {
				e.link = first
			} else {
				seen[key] = rel
			}
		}
		if e.link != "" {
			h := *hdr
			h.Typeflag, h.Size, h.Linkname = tar.TypeLink, 0, e.link
			inv.add(rel, &h)
		} else {
			inv.add(rel, hdr)
		}
		s.entries = append(s.entries, e)
		return nil
	})
	return inv, err
}

// header builds a tar header from lstat and the file's xattrs; it also
// returns the raw stat, whose inode number finds hardlinks.
func (s *dirSource) header(p, rel string) (*tar.Header, *syscall.Stat_t, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, nil, s.readErr(p, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	target := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(p); err != nil {
			return nil, nil, s.readErr(p, err)
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return nil, nil, &InputError{Msg: fmt.Sprintf("%s: %v", p, err), Fix: "remove sockets and other special files from the tree"}
	}
	hdr.Name, hdr.Uname, hdr.Gname = rel, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if fi.Mode().IsDir() {
		hdr.Size = 0
	}
	xattrs, err := readXattrs(p)
	if err != nil {
		return nil, nil, s.readErr(p, err)
	}
	for k, v := range xattrs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = v
	}
	return hdr, st, nil
}

// readXattrs returns a file's extended attributes, without following links.
// Host-only labels (SELinux) are left out: the guest relabels its own.
func readXattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if k == "" || k == "security.selinux" {
			continue
		}
		vs, err := unix.Lgetxattr(p, k, nil)
		if err != nil {
			continue
		}
		v := make([]byte, vs)
		if vs, err = unix.Lgetxattr(p, k, v); err != nil {
			continue
		}
		out[k] = string(v[:vs])
	}
	return out, nil
}

// Stream writes the entries Scan found, reading regular files' bytes.
func (s *dirSource) Stream(ctx context.Context, ts *tarStream) error {
	for _, e := range s.entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case e.hdr.Typeflag == tar.TypeDir:
			if err := ts.dir(e.name, e.hdr); err != nil {
				return err
			}
		case e.link != "":
			if err := ts.link(e.name, e.link, e.hdr); err != nil {
				return err
			}
		case e.hdr.Typeflag == tar.TypeReg:
			if err := s.copyFile(ts, e); err != nil {
				return err
			}
		default:
			if err := ts.entry(e.name, e.hdr, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *dirSource) copyFile(ts *tarStream, e dirEntry) error {
	p := filepath.Join(s.root, e.name)
	f, err := os.Open(p)
	if err != nil {
		return s.readErr(p, err)
	}
	defer f.Close()
	return ts.entry(e.name, e.hdr, f)
}

func (s *dirSource) readErr(p string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return &InputError{Msg: fmt.Sprintf("cannot read %s: permission denied", p),
			Fix: "run c2vm assemble as a user who can read the whole tree (root, or inside the build), or give a tar of the tree instead"}
	}
	return &InputError{Msg: fmt.Sprintf("cannot read %s: %v", p, err), Fix: "check the source tree"}
}

func (s *dirSource) Close() error { return nil }
