// Package testbin builds the c2vm binary for tests that run it as a user
// would.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the package at pkg (a path relative to the test) into a new
// directory under base (os.TempDir() when empty), readable by every user. It
// returns the binary and a function that removes the directory.
func Build(base, pkg string) (bin string, cleanup func()) {
	dir, err := os.MkdirTemp(base, "c2vm-test-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	bin = filepath.Join(dir, "c2vm")
	// Static, as the Makefile and the c2vm image build it: in app mode the
	// binary is the guest's /init, where no C library exists.
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		panic(string(out))
	}
	return bin, func() { os.RemoveAll(dir) }
}
