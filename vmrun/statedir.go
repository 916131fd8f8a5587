package vmrun

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/c2vm/c2vm/internal/owndir"
	"github.com/c2vm/c2vm/internal/usererr"
)

// A VM's state lives in a directory of its own, $XDG_STATE_HOME/c2vm/vms/NAME
// (else ~/.local/state/c2vm/vms/NAME): its overlay, UEFI variables, console
// log, control socket and state file. Every directory from the user's state
// directory down is checked as it is opened: this user's own, writable by
// no one else, and not a link. A root run with another user's $HOME (sudo
// -E) must not boot an overlay that user could have put there, nor write
// where that user points a swapped directory.

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

const nameFix = "use 1 to 63 lowercase letters, digits, '_', '.' and '-', starting with a letter or digit"

// CheckName refuses a VM name that could not be a plain directory name.
func CheckName(n string) error {
	if !namePattern.MatchString(n) {
		return usererr.New(fmt.Sprintf("bad VM name %q", n), nameFix)
	}
	return nil
}

// derivedName names the VM of a disk run without --name: the file's base
// name and 8 hex digits of the SHA-256 of its absolute path. Running the
// same file again continues the same VM; two files of the same name in
// different directories get different VMs.
func derivedName(abs string) string {
	base := strings.ToLower(filepath.Base(abs))
	if ext := filepath.Ext(base); ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	var b strings.Builder
	for _, c := range base {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeft(b.String(), "_.-")
	if len(s) > 54 {
		s = s[:54]
	}
	if s == "" {
		s = "vm"
	}
	sum := sha256.Sum256([]byte(abs))
	return s + "-" + hex.EncodeToString(sum[:4])
}

// stateHome is the user's state directory: $XDG_STATE_HOME when it is an
// absolute path (the XDG spec ignores others), else ~/.local/state.
func stateHome() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usererr.New("cannot find the directory for c2vm's VM state: "+err.Error(), "set XDG_STATE_HOME or HOME")
	}
	return filepath.Join(home, ".local", "state"), nil
}

// vmsDir is the directory of every VM's state, opened.
type vmsDir struct {
	path string // absolute
	root *os.Root
}

// openVMs opens (with create, makes) the directory that holds every VM's
// state, each level checked (internal/owndir). Without create, a missing
// directory is (nil, nil).
func openVMs(create bool) (*vmsDir, error) {
	base, err := stateHome()
	if err != nil {
		return nil, err
	}
	r, err := owndir.Open(base, create, "c2vm", "vms")
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, nil
	}
	if err != nil {
		var oe *owndir.Error
		if errors.As(err, &oe) {
			return nil, stateDirError(oe.Path, oe.Err)
		}
		return nil, stateDirError(base, err)
	}
	return &vmsDir{path: filepath.Join(base, "c2vm", "vms"), root: r}, nil
}

func (v *vmsDir) Close() { v.root.Close() }

func stateDirError(path string, err error) error {
	return usererr.New(fmt.Sprintf("cannot use %s for c2vm's VM state: %v", path, unwrapPathError(err)),
		"make it a directory of yours that only you may write (chown, chmod go-w), or point XDG_STATE_HOME at one")
}
