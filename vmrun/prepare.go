package vmrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// qemuBinary is the emulator of amd64 guests; tests replace it with a
// stand-in.
var qemuBinary = "qemu-system-x86_64"

// prepare checks everything it can before QEMU starts, cheapest first, so
// that a mistake costs no boot and gets its own message instead of QEMU's.
func prepare(ctx context.Context, o Options) (*plan, error) {
	o = withDefaults(o)
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	disk, fi, err := checkDisk(o.Disk, o.InPlace)
	if err != nil {
		return nil, err
	}
	o.Disk = disk
	if o.QMP != "" {
		// QEMU binds it while c2vm runs elsewhere: make it absolute.
		if o.QMP, err = filepath.Abs(o.QMP); err != nil {
			return nil, err
		}
	}
	p := &plan{o: o, id: identityOf(fi), name: o.Name, stopReqs: make(chan stopRequest, 8), notReady: make(chan error, 1)}
	if p.name == "" && (!o.Snapshot && !o.InPlace || o.background) {
		p.name = derivedName(disk)
	}
	if err := p.inspect(ctx); err != nil {
		return nil, err
	}
	if err := p.setUp(ctx); err != nil {
		p.cleanup()
		return nil, err
	}
	return p, nil
}

// setUp makes the files the run needs (its temporary directory, the VM's
// state, the cloud-init seed, the disk the guest boots) and QEMU's command
// line.
func (p *plan) setUp(ctx context.Context) error {
	var err error
	if p.work, err = os.MkdirTemp("", "c2vm-run-"); err != nil {
		return err
	}
	p.qmp = filepath.Join(p.work, "qmp.sock")
	p.mon = &monitor{sock: p.qmp}
	if p.name != "" {
		if err := p.openVM(); err != nil {
			return err
		}
	}
	if p.o.CloudInit != "" {
		if p.seed, err = makeSeed(ctx, p.work, p.o.CloudInit); err != nil {
			return err
		}
	}
	want, err := parseDiskSize(p.o.DiskSize)
	if err != nil {
		return err
	}
	note, err := p.planDrive(ctx, want)
	if err != nil {
		return err
	}
	if note != "" {
		p.notes = append(p.notes, note)
	}
	p.planBoot(ctx)
	if p.args, err = p.qemuArgs(p.accel(ctx), p.firmware); err != nil {
		return err
	}
	return p.recordStart()
}

// inspect reads the disk's headers, its c2vm.json and partition table,
// and plans the forwards: everything that needs no temporary file.
func (p *plan) inspect(ctx context.Context) error {
	o := p.o
	var err error
	if p.image, err = inspectDisk(o.Disk, o.AllowExternal); err != nil {
		return err
	}
	if p.meta, err = diskmeta.ForDisk(o.Disk); err != nil {
		return usererr.New(fmt.Sprintf("cannot read the disk's %s: %v", diskmeta.FileName, err),
			"repair or remove "+filepath.Join(filepath.Dir(o.Disk), diskmeta.FileName)+" (c2vm assemble writes it)")
	}
	if p.forwards, p.notes, err = planForwards(o.Ports, p.exposed()); err != nil {
		return err
	}
	if err := p.planAccess(); err != nil {
		return err
	}
	head, headErr := readHead(ctx, o.Disk, p.image.Format)
	if headErr == nil {
		if err := checkBootable(o.Disk, head); err != nil {
			return err
		}
		p.head = head
	}
	p.arch = p.resolveArch(ctx)
	if err := checkArch(o, p.arch, p.meta); err != nil {
		return err
	}
	if _, err := checkHardware(o, p.arch); err != nil {
		return err
	}
	if p.qemu, err = hosttools.Look(qemuFor(p.arch)); err != nil {
		return err
	}
	if p.accelKind, err = pickArchAccel(o.Accel, p.qemu, p.arch); err != nil {
		return err
	}
	if note := emulationNote(p.arch, p.accelKind); note != "" {
		p.notes = append(p.notes, note)
	}
	if p.arch == archARM64 {
		// checkArch refused BIOS: arm64 machines boot UEFI only.
		p.firmware = "uefi"
		return nil
	}
	want := o.Firmware
	if o.SecureBoot {
		// Whatever the disk's table says: Secure Boot is UEFI's.
		want = "uefi"
	}
	if p.firmware, err = chooseFirmware(o.Disk, head, headErr, want, p.meta); err != nil {
		return err
	}
	if note := firmwareBusNote(p.firmware, o.DiskBus); note != "" {
		p.notes = append(p.notes, "c2vm: note: "+note)
	}
	return nil
}

// accel is the -accel value: the accelerator inspect picked, with TCG's
// threads chosen for this QEMU. It also sets the arm64 CPU's pointer
// authentication from the same version.
func (p *plan) accel(ctx context.Context) string {
	if p.accelKind != "tcg" {
		return p.accelKind
	}
	version := versionOf(ctx, p.qemu)
	p.pauthImpdef = p.arch == archARM64 && pauthImpdefKnown(version)
	return tcgAccelFor(version)
}

// cleanup releases what prepare and the run took: the QMP connection, the
// VM's log and lock, and the temporary directory.
func (p *plan) cleanup() {
	if p.mon != nil {
		p.mon.close()
	}
	if c, ok := p.log.(io.Closer); ok {
		c.Close()
	}
	if p.vm != nil {
		p.vm.Close()
	}
	if p.workRoot != nil {
		p.workRoot.Close()
	}
	if p.work != "" {
		os.RemoveAll(p.work)
	}
}

func withDefaults(o Options) Options {
	if o.Memory == "" {
		o.Memory = "1024M"
	}
	if o.DiskSize == "" {
		o.DiskSize = DefaultDiskSize
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return o
}

// checkDisk returns the disk's absolute path, as QEMU reads a relative name
// with a colon before its first slash as a protocol ("nbd:…", "json:…"),
// and what it is. Only a disk the guest writes must be writable.
func checkDisk(disk string, writable bool) (string, os.FileInfo, error) {
	if disk == "" {
		return "", nil, usererr.New("no disk given", "give the path of a disk c2vm assemble wrote, such as out/linux.img")
	}
	abs, err := filepath.Abs(disk)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", nil, usererr.New(fmt.Sprintf("disk %s: %v", disk, unwrapPathError(err)), "give the path of a disk c2vm assemble wrote, such as out/linux.img")
	}
	if !fi.Mode().IsRegular() {
		return "", nil, usererr.New(fmt.Sprintf("disk %s is not a regular file", disk), "give the path of a disk file c2vm assemble wrote")
	}
	mode := os.O_RDONLY
	if writable {
		mode = os.O_RDWR
	}
	f, err := os.OpenFile(abs, mode, 0)
	if err != nil {
		fix := "make it readable by the user running c2vm"
		if writable {
			fix = "make it writable, or drop --in-place to leave it unchanged"
		}
		return "", nil, usererr.New(fmt.Sprintf("cannot open disk %s: %v", disk, unwrapPathError(err)), fix)
	}
	f.Close()
	return abs, fi, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// exposed is the disk's EXPOSE list unless the user turned it off.
func (p *plan) exposed() []string {
	if p.o.NoExpose || p.meta == nil {
		return nil
	}
	return p.meta.ExposedPorts
}
