package ocitest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TrickyDir writes into root the files a directory source must carry
// exactly: f (setuid, "shared", xattr user.c2vm=kept when the file system
// allows), g a hard link to f, s a symlink to a host path outside the tree,
// and sparse, a hole of holeAt bytes then "tail". It reports whether the
// xattr could be set, so callers check it only where it exists.
func TrickyDir(t testing.TB, root string, holeAt int64) (xattr bool) {
	t.Helper()
	f := filepath.Join(root, "f")
	steps := []func() error{
		func() error { return os.WriteFile(f, []byte("shared"), 0o644) },
		func() error { return os.Chmod(f, 0o755|os.ModeSetuid) },
		func() error { return os.Link(f, filepath.Join(root, "g")) },
		func() error { return os.Symlink("/nonexistent/outside", filepath.Join(root, "s")) },
		func() error {
			sp, err := os.Create(filepath.Join(root, "sparse"))
			if err != nil {
				return err
			}
			defer sp.Close()
			_, err = sp.WriteAt([]byte("tail"), holeAt)
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return unix.Setxattr(f, "user.c2vm", []byte("kept"), 0) == nil
}
