package vmrun

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// ovmfDir is where Debian's ovmf package puts the 4 MiB UEFI firmware.
var ovmfDir = "/usr/share/OVMF"

// qemuArgs builds QEMU's command line from checked values: paths are
// escaped for QEMU's option syntax, everything else was validated.
func (p *plan) qemuArgs(accel, firmware string) ([]string, error) {
	o := p.o
	if err := checkSocketPath(p.qmp); err != nil {
		return nil, err
	}
	netdev := "user,id=net0"
	for _, f := range p.forwards {
		netdev += "," + f.hostfwd()
	}
	display, err := p.displayArgs()
	if err != nil {
		return nil, err
	}
	hw, err := checkHardware(o, p.arch)
	if err != nil {
		return nil, err
	}
	lean := p.direct != nil && p.direct.lean
	machine := hw.machine
	if p.arch == archARM64 {
		machine = armMachine(accel)
		display = append(display, armDisplayArgs(o.Display)...)
	}
	if lean {
		machine, hw.noROM = leanMachine, true
		display = append(display, leanArgs()...)
	}
	if o.SecureBoot {
		// Never lean: Secure Boot runs no direct boot (wantsDirect).
		machine = secureMachine(machine)
	}
	args := []string{"-machine", machine, "-accel", accel, "-m", strings.TrimSpace(o.Memory), "-smp", fmt.Sprint(o.CPUs)}
	args = append(args, display...)
	args = append(args, "-no-reboot", "-serial", "mon:stdio")
	args = append(args, hw.diskArgs("file="+optValue(p.drive)+",format="+p.driveFormat)...)
	if p.seed != "" {
		// A second disk the guest's cloud-init finds by its label.
		args = append(args, "-drive", "file="+optValue(p.seed)+",format=raw,if=virtio,readonly=on")
	}
	args = append(args, hw.nicArgs(netdev)...)
	// An entropy source: without one, guests that need random numbers
	// early (DHCP clients, TLS) wait minutes under emulation.
	args = append(args, "-device", "virtio-rng-pci")
	// c2vm's own monitor, and the caller's: QEMU serves one client per QMP
	// socket, so a user connected to --qmp never blocks a graceful stop.
	args = append(args, qmpArgs("c2vm-qmp", p.qmp)...)
	if o.QMP != "" {
		args = append(args, qmpArgs("user-qmp", o.QMP)...)
	}
	switch {
	case p.arch == archARM64:
		args = append(args, "-cpu", armCPU(accel, p.pauthImpdef))
	case accel == "kvm":
		args = append(args, "-cpu", "host")
	}
	if p.direct != nil {
		// Plain file names and a plain string: QEMU reads no options in them.
		return append(args, "-kernel", p.direct.kernel, "-initrd", p.direct.initrd, "-append", p.direct.cmdline), nil
	}
	if firmware == "uefi" {
		fw, err := p.uefiArgs()
		if err != nil {
			return nil, err
		}
		args = append(args, fw...)
	}
	return args, nil
}

// displayArgs show the guest's screen as asked. Without a display the
// graphics card is still there (QMP screendump reads it); with one,
// QEMU's monitor stays on the console (Ctrl-a c), not on the screen.
func (p *plan) displayArgs() ([]string, error) {
	switch p.o.Display {
	case "vnc":
		n, err := freeVNCDisplay()
		if err != nil {
			return nil, err
		}
		p.vnc = fmt.Sprintf("127.0.0.1:%d", 5900+n)
		return []string{"-display", fmt.Sprintf("vnc=127.0.0.1:%d", n), "-monitor", "none"}, nil
	case "gtk":
		return []string{"-display", "gtk", "-monitor", "none"}, nil
	}
	return []string{"-nographic"}, nil
}

// freeVNCDisplay is a VNC display number whose port (5900+N) is free on
// 127.0.0.1.
func freeVNCDisplay() (int, error) {
	for n := range 100 {
		if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", 5900+n)); err == nil {
			l.Close()
			return n, nil
		}
	}
	return 0, usererr.New("no free VNC port from 5900 to 5999 on 127.0.0.1", "stop another VNC server, or use --display none")
}

func qmpArgs(id, path string) []string {
	return []string{"-chardev", "socket,id=" + id + ",path=" + optValue(path) + ",server=on,wait=off",
		"-mon", "chardev=" + id + ",mode=control"}
}

// uefiArgs boots the run's UEFI build (OVMF, plain or Secure Boot's, or
// arm64's AAVMF) with a variable store of the VM's own.
func (p *plan) uefiArgs() ([]string, error) {
	fw := p.uefiBuild()
	dir := ovmfDir
	if fw.arm64 {
		dir = aavmfDir
	}
	code := filepath.Join(dir, fw.code)
	vars, err := os.ReadFile(filepath.Join(dir, fw.vars))
	if _, cerr := os.Stat(code); err != nil || cerr != nil {
		return nil, &hosttools.MissingToolError{Tool: fw.tool, Package: hosttools.Firmware[fw.code]}
	}
	varsCopy, err := p.varsCopy(fw.varsFile, vars)
	if err != nil {
		return nil, err
	}
	if p.o.SecureBoot {
		p.notes = append(p.notes, firmwareNote(code))
	}
	return append(append([]string(nil), fw.globals...),
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+optValue(code),
		"-drive", "if=pflash,format=raw,unit=1,file="+optValue(varsCopy)), nil
}

// varsCopy is the variable store's file: the VM's own, made from template
// on its first boot with this build, so that boot entries persist with the
// VM. A run that keeps nothing gets a fresh copy in its temporary
// directory.
func (p *plan) varsCopy(name string, template []byte) (string, error) {
	if p.vm == nil || p.o.Snapshot {
		path := filepath.Join(p.work, name)
		return path, os.WriteFile(path, template, 0o600)
	}
	if !p.vm.regular(name) {
		if err := p.vm.writeNew(name, template); err != nil {
			return "", err
		}
	}
	return p.vm.file(name), nil
}

// optValue escapes a path for QEMU's key=value,… syntax, where a doubled
// comma stands for one: a disk named "a,b.img" stays one file name instead
// of smuggling in an option.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// pickAccel chooses KVM when asked, or when it works and C2VM_ACCEL does
// not say otherwise; TCG always works, only slower.
func pickAccel(a, qemu string) (string, error) {
	if a == "" || a == "auto" {
		a = os.Getenv("C2VM_ACCEL")
	}
	switch a {
	case "", "auto":
		if kvmUsable(qemu) {
			return "kvm", nil
		}
		return "tcg", nil
	case "kvm", "tcg":
		return a, nil
	}
	return "", usererr.New(fmt.Sprintf("unknown accelerator %q", a), "use --accel auto, kvm or tcg (C2VM_ACCEL takes the same values)")
}

// kvmProbe is a 64 KiB firmware image whose reset vector (its last 16
// bytes, at 0xFFFFFFF0) runs fwait; fninit and then writes 1 to the
// isa-debug-exit port, so QEMU exits with status 3 exactly when the guest's
// code really ran. The FPU instructions matter: on some nested hosts KVM
// starts a VM, runs plain code, and then fails to emulate them ("KVM
// internal error"), leaving the guest paused forever.
func kvmProbe() []byte {
	b := make([]byte, 64<<10)
	copy(b[len(b)-16:], []byte{0x9B, 0xDB, 0xE3, 0xB0, 0x01, 0xE6, 0xF4, 0xF4})
	return b
}

// kvmUsable runs kvmProbe under KVM. Opening /dev/kvm, or starting a
// paused VM, is not enough: some nested hypervisors accept both and then
// fail to run the guest.
func kvmUsable(qemu string) bool {
	f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	dir, err := os.MkdirTemp("", "c2vm-kvm-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	bios := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(bios, kvmProbe(), 0o600); err != nil {
		return false
	}
	cmd := exec.Command(qemu, "-accel", "kvm", "-cpu", "host", "-machine", "q35",
		"-nodefaults", "-display", "none", "-bios", bios, // a plain file name, not key=value
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	// QEMU pauses the guest rather than exit when KVM fails: watch for
	// that, so a host without working KVM costs a moment, not a timeout.
	stderr := &tailBuffer{max: 4 << 10, watch: kvmFailure, hit: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return false
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		ee, ok := err.(*exec.ExitError)
		return ok && ee.ExitCode() == 3
	case <-stderr.hit:
	case <-time.After(10 * time.Second):
	}
	cmd.Process.Kill()
	<-exited
	return false
}
