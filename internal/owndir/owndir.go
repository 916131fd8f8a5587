// Package owndir opens directories c2vm keeps for the user (the GRUB image
// cache, VM state) so that nobody else can steer them: each directory is
// checked as it is opened (this user's own, writable by no one else, not a
// link), and the caller then works through the returned os.Root. A root
// run with another user's $HOME (sudo -E) must neither use what that user
// put there nor write where that user points a swapped directory.
package owndir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Error says which directory failed and why.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Open opens base and then each of subdirs below it, checking every level.
// With create, missing directories are made (0700); without it, a missing
// one gives an error that is fs.ErrNotExist.
func Open(base string, create bool, subdirs ...string) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(base, 0o700); err != nil {
			return nil, &Error{base, err}
		}
	}
	r, err := os.OpenRoot(base)
	if err != nil {
		return nil, &Error{base, err}
	}
	path := base
	for i := -1; i < len(subdirs); i++ {
		if i >= 0 {
			path = filepath.Join(path, subdirs[i])
			sub, err := Sub(r, subdirs[i], create)
			r.Close()
			if err != nil {
				return nil, &Error{path, err}
			}
			r = sub
		}
		if err := Check(r); err != nil {
			r.Close()
			return nil, &Error{path, err}
		}
	}
	return r, nil
}

// Sub opens name in r (with create, makes it first), refusing a link. Only
// this user can change r's entries (Check held for r), so the entry checked
// is the one opened; the caller checks the result with Check.
func Sub(r *os.Root, name string, create bool) (*os.Root, error) {
	if create {
		if err := r.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", name)
	}
	return r.OpenRoot(name)
}

// Check says why r is not a directory of this user's that no one else may
// write, or nil.
func Check(r *os.Root) error {
	fi, err := r.Stat(".")
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("not a directory")
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("owned by another user")
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("others may write it (mode %o)", fi.Mode().Perm())
	}
	return nil
}

// WriteFile makes file name of r from what write writes: under a temporary
// name (".tmp-" and random hex) first, synced and renamed once complete, so
// that a reader, another run included, never sees half of it and a failure
// leaves the old file. The temporary file is opened without following a
// link and removed on failure.
func WriteFile(r *os.Root, name string, write func(*os.File) error) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ".tmp-" + hex.EncodeToString(rnd[:])
	f, err := r.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		r.Remove(tmp)
	}
	return err
}
