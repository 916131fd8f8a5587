// Package vmrun boots a c2vm disk in QEMU with the guest's serial console on
// the caller's terminal: what `c2vm run` does. The disk itself is only read:
// the guest boots a copy-on-write overlay kept in the VM's state directory
// (named after the VM), so running the same disk again continues the same
// VM. It picks the firmware from the disk's partition table, forwards ports
// through QEMU's user network, waits for the guest's SSH server and other
// ports to answer, stops the guest with the ACPI power button on SIGINT,
// SIGTERM, SIGHUP or c2vm stop (over QMP), turns an app-mode guest's exit
// code into the run's, and puts the terminal back the way it found it. A
// named VM can also run in the background (Detach), and be listed, logged
// into, stopped and removed by name.
package vmrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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

	// Boot is how the disk starts: "auto" or "" (an app disk's kernel
	// directly, other disks, and runs given a firmware or SecureBoot,
	// through the firmware), "firmware" (the firmware and the disk's
	// GRUB, as every hypervisor boots it) or "kernel" (QEMU starts the
	// kernel and initramfs it reads from the disk: app mode's, or a system
	// disk's /vmlinuz and /initrd.img). A disk that cannot start directly boots
	// through the firmware, with a note.
	Boot string
	// SecureBoot boots OVMF's Secure Boot build, enforcing, with
	// Microsoft's keys enrolled, on q35 with SMM. It implies UEFI, and
	// refuses --firmware bios, another machine, --boot kernel and arm64
	// disks.
	SecureBoot bool

	// Name is the VM's: its state directory, and what c2vm ls, ssh, logs,
	// stop and rm take. "" derives one from the disk's file (see
	// derivedName) for a run that keeps the guest's writes or runs in the
	// background; other runs then keep nothing.
	Name string
	// Snapshot discards the guest's writes: the overlay is temporary.
	Snapshot bool
	// InPlace boots Disk itself, which the guest's writes then change.
	InPlace bool

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
	// cancellation or SIGHUP) before QEMU is stopped hard: 0 is
	// DefaultStopTimeout, negative stops hard at once.
	StopTimeout time.Duration

	// Ports are forwards like docker run -p: "HOST:GUEST" (all host
	// addresses) or "IP:HOST:GUEST", TCP, optionally ending in "/tcp".
	Ports []string
	// NoExpose turns off forwarding the disk's exposed ports (c2vm.json).
	NoExpose bool
	// QMP, when set, is the path of an extra QMP socket for the caller.
	QMP string
	// SSH forwards a free host port on 127.0.0.1 to the guest's port 22
	// (or uses a -p or exposed forward of it) and prints the ssh command
	// once the guest's SSH server answers.
	SSH bool
	// WaitPorts are guest TCP ports to wait for (forwarded like SSH's when
	// no forward has them): each is announced once it answers.
	WaitPorts []int
	// ReadyTimeout bounds the wait for SSH and WaitPorts: 0 is
	// DefaultReadyTimeout. A port that does not answer in time fails the
	// run, and the guest is stopped.
	ReadyTimeout time.Duration
	// CloudInit is a cloud-init user-data file, attached as a NoCloud seed
	// (a FAT drive labelled CIDATA) for cloud-init in the guest.
	CloudInit string
	// DiskSize is the least virtual size the guest's disk gets ("" is
	// DefaultDiskSize, "keep" leaves it): a larger disk grows into it.
	DiskSize string
	// NIC, Machine and DiskBus choose emulated hardware ("" for the
	// defaults: virtio-net-pci, q35 (virt for arm64), virtio): what other
	// hypervisors give.
	NIC, Machine, DiskBus string
	// Arch is the disk's machine: "auto" or "" (its c2vm.json, else its
	// ESP's boot loader, else amd64), "amd64" or "arm64" (QEMU's virt
	// machine with AAVMF, under TCG unless the host is arm64 with KVM).
	Arch string
	// Display is the guest's screen: "none" or "" (only the serial
	// console), "vnc" (a VNC server on 127.0.0.1) or "gtk" (a window).
	Display string

	Stdin  io.Reader `json:"-"` // the console's input; a terminal is restored at the end
	Stdout io.Writer `json:"-"` // the console
	Stderr io.Writer `json:"-"` // c2vm's notes (forwarded ports)

	// background runs the VM detached: the console only goes to its log,
	// and ready is called once the guest runs and its ports answer.
	background bool
	ready      func(name string)
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
// guest's program exited 0. A non-zero program exit is an *ExitError; a
// guest powered off hard (QEMU quit, killed, or stopped after the grace
// period) a *PoweredOffHard; every other failure is an error for the user,
// mostly an *usererr.Error.
//
// Cancelling ctx, SIGHUP (a closed terminal) and c2vm stop press the
// guest's power button (QMP system_powerdown) and wait StopTimeout for it to
// power off; a SIGINT or SIGTERM during that wait stops QEMU at once.
func Run(ctx context.Context, o Options) (err error) {
	ctx, stopHangup := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stopHangup()
	p, err := prepare(ctx, o)
	if err != nil {
		return err
	}
	defer p.cleanup()
	defer func() { p.end(err) }()
	if ctx.Err() != nil {
		// Stopped while preparing: no guest to power off yet.
		return context.Cause(ctx)
	}
	p.announce()
	// Saved before QEMU starts and restored on every way out, since a
	// stopped QEMU, or the relay, leaves the terminal raw.
	restore := saveTerminal(p.o.Stdin)
	defer restore()
	res, err := p.boot(ctx)
	if err != nil {
		return err
	}
	return p.verdict(res)
}

// announce says, before the boot, what the run set up.
func (p *plan) announce() {
	for _, n := range p.notes {
		p.say(n)
	}
	for _, f := range p.forwards {
		p.say(fmt.Sprintf("c2vm: port %d/tcp → %s", f.Guest, f.hostAddr()))
	}
	if p.vnc != "" {
		p.say(fmt.Sprintf("c2vm: the guest's screen is on VNC at %s", p.vnc))
	}
}

// plan is a validated run: everything QEMU needs, decided before it starts.
type plan struct {
	o         Options
	meta      *diskmeta.Meta // nil without c2vm.json
	qemu      string         // the binary
	accelKind string         // kvm or tcg
	args      []string
	work      string // temporary directory: QMP socket, seed, --snapshot's overlay
	qmp       string // c2vm's own QMP socket
	mon       *monitor
	forwards  []Forward
	notes     []string  // said before the boot
	image     diskImage // what the disk's headers say
	head      []byte    // the disk's first headBytes, or nil when unreadable
	id        identity  // the disk file, as the overlay was made on it
	firmware  string
	arch      string // the disk's machine: amd64 or arm64
	// pauthImpdef gives the arm64 CPU under TCG QEMU's own pointer
	// authentication (armCPU).
	pauthImpdef bool

	drive, driveFormat string // what the guest boots: an overlay, or with InPlace the disk

	direct   *directBoot // the kernel QEMU starts itself; nil boots through the firmware
	workRoot *os.Root    // work, opened, when the direct boot's files live there

	name string    // the VM's; "" for a run that keeps nothing
	vm   *vmDir    // its state directory, locked; nil without a name
	prev *vmState  // its state before this run
	log  io.Writer // its console log, or nil
	st   *vmState  // its state file, as this run keeps it
	ctl  *control  // its control socket, while QEMU runs

	sshUser string // whom --ssh and c2vm ssh log in as; "" when the disk has no keys
	sshLine string // --ssh: the command that logs in, said once the server answers
	seed    string // --cloud-init: the NoCloud seed image
	vnc     string // --display vnc: host:port of the VNC server

	started  time.Time        // when QEMU started
	stopReqs chan stopRequest // from c2vm stop, through the control socket
	notReady chan error       // a port did not answer within ReadyTimeout
}

// appMode tells whether the guest reports its program's exit code.
func (p *plan) appMode() bool { return p.meta != nil && p.meta.Mode == "app" }
