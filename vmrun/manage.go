package vmrun

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// VM is one VM as c2vm ls shows it.
type VM struct {
	Name     string
	Running  bool
	Disk     string
	Mode     string // overlay, in-place or snapshot
	Forwards []Forward
	Ended    *Ending // how its last run ended; nil while it runs
}

// Status is the VM's state in a word or two: running, or how it ended.
func (v VM) Status() string {
	switch {
	case v.Running:
		return "running"
	case v.Ended != nil:
		return "stopped: " + v.Ended.summary()
	}
	return "stopped"
}

// List returns the user's VMs, by name.
func List() ([]VM, error) {
	vms, err := openVMs(false)
	if err != nil || vms == nil {
		return nil, err
	}
	defer vms.Close()
	entries, err := fs.ReadDir(vms.root.FS(), ".")
	if err != nil {
		return nil, stateDirError(vms.path, err)
	}
	var out []VM
	for _, e := range entries {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		d, err := vms.open(e.Name(), false)
		if err != nil {
			continue // not a VM of this user's: c2vm run would refuse it too
		}
		v := VM{Name: d.name, Running: d.running()}
		if st, err := d.readState(); err == nil && st != nil {
			v.Disk, v.Mode, v.Forwards = st.Disk, st.Mode, st.Forwards
			if !v.Running {
				v.Ended = st.Ended
			}
		}
		d.Close()
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VM) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// stopWait is how long c2vm stop waits beyond the guest's grace period:
// QEMU's own exit (quitGrace) and the run's last writes.
const stopWait = 30 * time.Second

// Stop powers VM name off: its power button, then, when it has not
// powered off after timeout (at once when negative), a hard stop. It says
// on out how the guest ended; the error is that of a hard power-off
// (*PoweredOffHard) or a failed run.
func Stop(name string, timeout time.Duration, out io.Writer) error {
	d, err := openVMDir(name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	r := stopRequest{Timeout: timeout, By: "c2vm stop", Flag: "c2vm stop --timeout", AtOnce: "c2vm stop --timeout 0"}
	e, err := requestStop(d, r, max(timeout, 0)+quitGrace+stopWait)
	switch {
	case errors.Is(err, errNotRunning):
		fmt.Fprintf(out, "c2vm: VM %s is not running\n", name)
		return nil
	case err != nil:
		return err
	}
	// The run answers just before it lets go of the VM.
	for deadline := time.Now().Add(10 * time.Second); d.running() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !e.Hard {
		fmt.Fprintf(out, "c2vm: VM %s %s\n", name, e.summary())
	}
	return e.err()
}

// Remove deletes VM name's state: its overlay (the guest's writes), UEFI
// variables, console log and host keys. A running VM is refused unless
// force, which stops it hard first.
func Remove(name string, force bool, out io.Writer) error {
	d, err := openVMDir(name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	if d.running() {
		if !force {
			return usererr.New(fmt.Sprintf("VM %s is running", name),
				fmt.Sprintf("c2vm stop %s first, or c2vm rm -f %[1]s to stop it hard and remove it", name))
		}
		r := stopRequest{Timeout: -1, By: "c2vm rm -f", Flag: "c2vm rm -f", AtOnce: "c2vm rm -f"}
		if _, err := requestStop(d, r, quitGrace+stopWait); err != nil && !errors.Is(err, errNotRunning) {
			return err
		}
	}
	// Holding the lock while removing keeps a new run out.
	if err := lockWithin(d, 10*time.Second); err != nil {
		return err
	}
	vms, err := openVMs(false)
	if err != nil || vms == nil {
		return err
	}
	defer vms.Close()
	if err := vms.root.RemoveAll(name); err != nil {
		return stateDirError(d.path, err)
	}
	fmt.Fprintf(out, "c2vm: removed VM %s\n", name)
	return nil
}

// lockWithin takes the VM's lock, waiting up to limit for a run that is
// ending.
func lockWithin(d *vmDir, limit time.Duration) error {
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		ok, err := d.tryLock()
		if err != nil {
			return stateDirError(d.path, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return usererr.New(fmt.Sprintf("VM %s is still running", d.name), fmt.Sprintf("c2vm stop %s, then c2vm rm %[1]s", d.name))
		}
	}
}
