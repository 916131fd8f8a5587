package vmrun

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/c2vm/c2vm/internal/owndir"
	"github.com/c2vm/c2vm/internal/usererr"
	"golang.org/x/sys/unix"
)

// The files of a VM's state directory.
const (
	overlayFile     = "overlay.qcow2"
	varsFile        = "OVMF_VARS.fd"
	secbootVarsFile = "OVMF_VARS.secboot.fd" // --secure-boot's, apart from the plain store
	aavmfVarsFile   = "AAVMF_VARS.fd"        // an arm64 guest's
	consoleFile     = "console.log"
	ctlFile         = "ctl.sock"
	stateFile       = "state.json"
	lockFile        = "lock"
	knownHostsFile  = "known_hosts"
)

// vmDir is one VM's state directory, opened and checked.
type vmDir struct {
	name string
	path string // absolute
	root *os.Root
	dirf *os.File // the directory itself, for socket paths of any length
	lock *os.File // held while a run of the VM goes on; nil otherwise
}

// openVMDir opens the state directory of VM name; with create it is made
// when missing. A VM that does not exist is a user error naming c2vm ls.
func openVMDir(name string, create bool) (*vmDir, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	vms, err := openVMs(create)
	if err != nil {
		return nil, err
	}
	if vms == nil {
		return nil, noVM(name)
	}
	defer vms.Close()
	return vms.open(name, create)
}

// open opens the state directory of VM name in v.
func (v *vmsDir) open(name string, create bool) (*vmDir, error) {
	vms := v
	path := filepath.Join(vms.path, name)
	r, err := owndir.Sub(vms.root, name, create)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noVM(name)
	}
	if err == nil {
		if err = owndir.Check(r); err != nil {
			r.Close()
		}
	}
	if err != nil {
		return nil, stateDirError(path, err)
	}
	dirf, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, stateDirError(path, err)
	}
	return &vmDir{name: name, path: path, root: r, dirf: dirf}, nil
}

func noVM(name string) error {
	return usererr.New(fmt.Sprintf("there is no VM named %s", name), "c2vm ls lists the VMs there are")
}

// Close releases the lock, if held, and the directory.
func (d *vmDir) Close() {
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	d.dirf.Close()
	d.root.Close()
}

// file is a file's absolute path, for QEMU and ssh, which open by name.
func (d *vmDir) file(name string) string { return filepath.Join(d.path, name) }

// sock is the address of a Unix socket in the directory. It goes through
// the opened directory, so it fits in a socket address (107 bytes)
// however deep the state directory is.
func (d *vmDir) sock(name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.dirf.Fd(), name)
}

// tryLock takes the VM's lock for a run. The lock lives as long as the
// process, so a crashed run never leaves its VM "running". A few retries
// ride out a c2vm ls looking at the lock at that moment.
func (d *vmDir) tryLock() (bool, error) {
	f, err := d.root.OpenFile(lockFile, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return false, err
	}
	for range 5 {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			d.lock = f
			return true, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Close()
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return false, err
}

// running tells whether a run of the VM holds its lock.
func (d *vmDir) running() bool {
	if d.lock != nil {
		return true
	}
	f, err := d.root.OpenFile(lockFile, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
}

// removeFiles removes files of the VM that a fresh start must not find.
func (d *vmDir) removeFiles(names ...string) error {
	for _, n := range names {
		if err := d.root.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// regular tells whether name is a regular file of the directory (a link
// or anything else is not).
func (d *vmDir) regular(name string) bool {
	fi, err := d.root.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

// writeNew makes a file of the directory that is not there yet, in place
// of any non-regular entry of that name.
func (d *vmDir) writeNew(name string, b []byte) error {
	if err := d.removeFiles(name); err != nil {
		return err
	}
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
