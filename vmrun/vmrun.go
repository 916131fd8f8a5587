// Package vmrun boots a c2vm disk in QEMU with the guest's serial console on
// the caller's terminal: what `c2vm run` does. It picks the firmware from the
// disk's partition table, forwards ports through QEMU's user network, stops
// the guest with the ACPI power button on SIGINT/SIGTERM (over QMP), turns an
// app-mode guest's exit code into the run's, and puts the terminal back the
// way it found it.
package vmrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/c2vm/c2vm/internal/diskmeta"
)

// DefaultStopTimeout is how long a guest gets to power off after the power
// button before QEMU is stopped hard.
const DefaultStopTimeout = 30 * time.Second

// Options say what to boot and how. The zero value of each field is its
// default.
type Options struct {
	Disk     string // raw, qcow2, vmdk, vhdx, vdi or vhd, by its headers
	Firmware string // "auto" or "" (from the partition table), "bios", "uefi"
	Accel    string // "auto" or "" (C2VM_ACCEL, else KVM when it works), "kvm", "tcg"
	Memory   string // QEMU size: N with an optional K, M, G or T (bare N is MiB); 1024M
	CPUs     int    // 2
	Snapshot bool   // discard the guest's writes

	// AllowExternal boots images that read other files (a qcow2 backing
	// file or data file, a VMDK's extents or parent); without it they are
	// refused, since QEMU would open whatever host file they name.
	AllowExternal bool

	// Expect makes the run succeed only if this text appears on the console
	// (and, unless QuitOnExpect, the guest then powers off).
	Expect string
	// QuitOnExpect stops the guest as soon as Expect appears, for guests
	// that stop at a login prompt.
	QuitOnExpect bool
	// Timeout, when set, bounds the whole run: a guest still running then
	// is stopped at once and the run fails.
	Timeout time.Duration
	// StopTimeout is the grace period after the power button (on ctx's
	// cancellation) before QEMU is stopped hard: 0 is DefaultStopTimeout,
	// negative stops hard at once.
	StopTimeout time.Duration

	// Ports are forwards like docker run -p: "HOST:GUEST" (all host
	// addresses) or "IP:HOST:GUEST", TCP, optionally ending in "/tcp".
	Ports []string
	// NoExpose turns off forwarding the disk's exposed ports (c2vm.json).
	NoExpose bool
	// QMP, when set, is the path of an extra QMP socket for the caller.
	QMP string
	// SSH forwards a free host port on 127.0.0.1 to the guest's port 22
	// (or uses a -p or exposed forward of it) and prints the ssh command.
	SSH bool
	// CloudInit is a cloud-init user-data file, attached as a NoCloud seed
	// (a FAT drive labelled CIDATA) for cloud-init in the guest.
	CloudInit string
	// DiskSize is the least virtual size the guest's disk gets ("" is
	// DefaultDiskSize, "keep" leaves it): a larger disk grows into it.
	DiskSize string
	// NIC, Machine and DiskBus choose emulated hardware ("" for the
	// defaults: virtio-net-pci, q35, virtio): what other hypervisors give.
	NIC, Machine, DiskBus string
	// Display is the guest's screen: "none" or "" (only the serial
	// console), "vnc" (a VNC server on 127.0.0.1) or "gtk" (a window).
	Display string

	Stdin  io.Reader // the console's input; a terminal is restored at the end
	Stdout io.Writer // the console
	Stderr io.Writer // c2vm's notes (forwarded ports)
}

// ExitError is the exit code an app-mode guest's program ended with, as the
// guest's c2vm init reported it on the console ("c2vm: exit code=N"). A
// command should exit with Code without a message of its own, as docker run
// does.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("the guest's program exited with code %d", e.Code)
}

// Run boots o.Disk and returns once QEMU has exited. It returns nil when the
// guest powered off by itself (or through the power button after ctx was
// cancelled) and every expectation held: Expect appeared, and an app-mode
// guest's program exited 0. A non-zero program exit is an *ExitError; every
// other failure is an error for the user, mostly an *usererr.Error.
//
// Cancelling ctx presses the guest's power button (QMP system_powerdown) and
// waits StopTimeout for it to power off; a second SIGINT or SIGTERM during
// that wait stops QEMU at once.
func Run(ctx context.Context, o Options) error {
	p, err := prepare(ctx, o)
	if err != nil {
		return err
	}
	defer os.RemoveAll(p.work)
	if ctx.Err() != nil {
		// Stopped while preparing: no guest to power off yet.
		return context.Cause(ctx)
	}
	for _, n := range p.notes {
		fmt.Fprintln(p.o.Stderr, n)
	}
	for _, f := range p.forwards {
		fmt.Fprintf(p.o.Stderr, "c2vm: port %d/tcp → %s\n", f.Guest, f.hostAddr())
	}
	if p.sshLine != "" {
		fmt.Fprintf(p.o.Stderr, "c2vm: log in with: %s\n", p.sshLine)
	}
	if p.vnc != "" {
		fmt.Fprintf(p.o.Stderr, "c2vm: the guest's screen is on VNC at %s\n", p.vnc)
	}
	// Saved before QEMU starts and restored on every way out, since QEMU
	// leaves the terminal raw when it is killed.
	restore := saveTerminal(p.o.Stdin)
	defer restore()
	res, err := p.boot(ctx)
	if err != nil {
		return err
	}
	return p.verdict(res)
}

// plan is a validated run: everything QEMU needs, decided before it starts.
type plan struct {
	o        Options
	meta     *diskmeta.Meta // nil without c2vm.json
	qemu     string         // the binary
	args     []string
	work     string // temporary directory: QMP socket, UEFI variables
	qmp      string // c2vm's own QMP socket
	forwards []Forward
	notes    []string  // said before the boot
	overlay  bool      // the disk is c2vm's temporary overlay: no -snapshot
	image    diskImage // what the disk's headers say
	sshLine  string    // --ssh: the command that logs in
	seed     string    // --cloud-init: the NoCloud seed image
	vnc      string    // --display vnc: host:port of the VNC server
}

// appMode tells whether the guest reports its program's exit code.
func (p *plan) appMode() bool { return p.meta != nil && p.meta.Mode == "app" }
