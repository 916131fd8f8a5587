package secureboot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A chain directory is hostile input (the frontend fills it from the
// image's own tools): a FIFO, a link out of it or a directory in a file's
// place makes it unusable, with the reason, and never blocks; a fetch
// step's reason is passed on.
func TestLoadHostileDirs(t *testing.T) {
	mk := func(t *testing.T, f func(shim string)) string {
		d := t.TempDir()
		shim := filepath.Join(d, shimPaths[0])
		if err := os.MkdirAll(filepath.Dir(shim), 0o755); err != nil {
			t.Fatal(err)
		}
		f(shim)
		return d
	}
	cases := map[string]struct {
		dir  func(t *testing.T) string
		want string
	}{
		"fifo": {func(t *testing.T) string {
			return mk(t, func(p string) { syscall.Mkfifo(p, 0o644) })
		}, "not a regular file"},
		"link out": {func(t *testing.T) string {
			return mk(t, func(p string) { os.Symlink("/etc/passwd", p) })
		}, "escapes"},
		"directory": {func(t *testing.T) string {
			return mk(t, func(p string) { os.Mkdir(p, 0o755) })
		}, "not a regular file"},
		"too big": {func(t *testing.T) string {
			return mk(t, func(p string) { os.WriteFile(p, make([]byte, MaxPiece+1), 0o644) })
		}, "larger than"},
		"fetch failed": {func(t *testing.T) string {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, FetchErrorFile), []byte("apt-get update failed\x1b[31m\n"), 0o644)
			return d
		}, "no signed shim: apt-get update failed?[31m"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Load([]string{c.dir(t)}); done <- err }()
			select {
			case err := <-done:
				var ue *UnsignedError
				if !errors.As(err, &ue) || ue.Piece != "shim" || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Load: %v; want an UnsignedError for shim with %q", err, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked")
			}
		})
	}
}

// Auto turns an unusable directory into a note, not a failed build.
func TestDecideAutoNeverFailsOnADirectory(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "usr/lib/shim"), 0o755)
	os.Symlink("/", filepath.Join(d, shimPaths[1]))
	c, note, err := Decide(ModeAuto, []string{d}, func() (Piece, error) { return Piece{}, nil })
	if c != nil || err != nil || !strings.Contains(note, "Secure Boot: the shim") {
		t.Errorf("auto: chain %v, note %q, err %v", c != nil, note, err)
	}
}
