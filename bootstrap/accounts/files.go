package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// The target is hostile: os.Root keeps every path inside it, but inside it
// a symlink is followed, even with O_NOFOLLOW. Files c2vm makes for an
// account (a home, .ssh, authorized_keys) are therefore checked with Lstat
// first and refused when something other than what c2vm would make is
// there, and their mode and owner are set through the open descriptor.

// maxAccountFile bounds /etc/shadow, /etc/passwd and the like as read.
const maxAccountFile = 16 << 20

func readSmall(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxAccountFile {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", maxAccountFile)
	}
	return root.ReadFile(name)
}

// rewrite replaces an existing file's contents, keeping its mode and owner
// (an account file's 0640 root:shadow stays).
func rewrite(root *os.Root, name string, b []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	return nil
}

// what names a file type for messages.
func what(fi fs.FileInfo) string {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	case fi.IsDir():
		return "directory"
	case fi.Mode().IsRegular():
		return "file"
	}
	return "special file"
}

// writeOwned makes name a regular file with data, mode and owner. A
// symlink or anything but a regular file at name is an error.
func writeOwned(root *os.Root, name string, data []byte, mode fs.FileMode, uid, gid int) error {
	fi, err := root.Lstat(name)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("the image's /%s is a %s: c2vm does not write through it", name, what(fi))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("/%s: %w", name, err)
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	return nil
}

// mkdirOwned makes directory name, or keeps the one there, with mode and
// owner. A symlink or a file at name is an error.
func mkdirOwned(root *os.Root, name string, mode fs.FileMode, uid, gid int) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := root.Mkdir(name, mode); err != nil {
			return fmt.Errorf("making /%s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("/%s: %w", name, err)
	case !fi.IsDir():
		return fmt.Errorf("the image's /%s is a %s, not a directory: c2vm does not write through it", name, what(fi))
	}
	f, err := root.Open(name)
	if err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	defer f.Close()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("/%s: %w", name, err)
	}
	return nil
}

// exists tells whether name is there (as anything, a dangling symlink too).
func exists(root *os.Root, name string) bool {
	_, err := root.Lstat(name)
	return err == nil
}
