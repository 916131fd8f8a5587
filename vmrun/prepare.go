package vmrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// qemuBinary is the emulator; tests replace it with a stand-in.
var qemuBinary = "qemu-system-x86_64"

// prepare checks everything it can before QEMU starts, cheapest first, so
// that a mistake costs no boot and gets its own message instead of QEMU's.
func prepare(ctx context.Context, o Options) (*plan, error) {
	o = withDefaults(o)
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	disk, err := checkDisk(o.Disk, o.Snapshot)
	if err != nil {
		return nil, err
	}
	o.Disk = disk
	p := &plan{o: o}
	if p.image, err = inspectDisk(disk, o.AllowExternal); err != nil {
		return nil, err
	}
	if p.meta, err = diskmeta.ForDisk(disk); err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot read the disk's %s: %v", diskmeta.FileName, err),
			"repair or remove "+filepath.Join(filepath.Dir(disk), diskmeta.FileName)+" (c2vm assemble writes it)")
	}
	if p.forwards, p.notes, err = planForwards(o.Ports, p.exposed()); err != nil {
		return nil, err
	}
	if err := p.planAccess(); err != nil {
		return nil, err
	}
	if p.qemu, err = hosttools.Look(qemuBinary); err != nil {
		return nil, err
	}
	accel, err := pickAccel(o.Accel, p.qemu)
	if err != nil {
		return nil, err
	}
	if accel == "tcg" {
		accel = TCGAccel(ctx, p.qemu)
	}
	head, headErr := readHead(ctx, disk, p.image.Format)
	if headErr == nil {
		if err := checkBootable(o.Disk, head); err != nil {
			return nil, err
		}
	}
	fw, err := chooseFirmware(disk, head, headErr, o.Firmware, p.meta)
	if err != nil {
		return nil, err
	}
	if note := firmwareBusNote(fw, o.DiskBus); note != "" {
		p.notes = append(p.notes, "c2vm: note: "+note)
	}
	if p.work, err = os.MkdirTemp("", "c2vm-run-"); err != nil {
		return nil, err
	}
	p.qmp = filepath.Join(p.work, "qmp.sock")
	if o.CloudInit != "" {
		if p.seed, err = makeSeed(ctx, p.work, o.CloudInit); err != nil {
			os.RemoveAll(p.work)
			return nil, err
		}
	}
	want, err := parseDiskSize(o.DiskSize)
	if err == nil {
		var note string
		orig := p.o.Disk
		if p.o.Disk, note, err = p.room(ctx, want); err == nil && note != "" {
			p.notes = append(p.notes, "c2vm: "+note)
			p.overlay = p.o.Disk != orig
		}
	}
	if err != nil {
		os.RemoveAll(p.work)
		return nil, err
	}
	if p.args, err = p.qemuArgs(accel, fw); err != nil {
		os.RemoveAll(p.work)
		return nil, err
	}
	return p, nil
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
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return o
}

// checkOptions validates the options that need no file or tool.
func checkOptions(o Options) error {
	if o.QuitOnExpect && o.Expect == "" {
		return usererr.New("--quit-on-expect needs --expect TEXT: it stops the guest when TEXT appears",
			"add --expect TEXT (e.g. --expect 'login:'), or drop --quit-on-expect")
	}
	if _, err := checkHardware(o); err != nil {
		return err
	}
	if _, err := parseDiskSize(o.DiskSize); err != nil {
		return err
	}
	if _, err := ParseMemory(o.Memory); err != nil {
		return err
	}
	if err := checkCPUs(o.CPUs); err != nil {
		return err
	}
	if o.Timeout < 0 {
		return usererr.New(fmt.Sprintf("--timeout %s is negative", o.Timeout), "give a duration such as 90s or 5m, or 0 for none")
	}
	switch o.Accel {
	case "", "auto", "kvm", "tcg":
	default:
		return usererr.New(fmt.Sprintf("unknown accelerator %q", o.Accel), "use --accel auto, kvm or tcg")
	}
	switch o.Firmware {
	case "", "auto", "bios", "uefi":
	default:
		return usererr.New(fmt.Sprintf("unknown firmware %q", o.Firmware), "use --firmware auto, bios or uefi")
	}
	for _, s := range o.Ports {
		if _, err := ParsePort(s); err != nil {
			return err
		}
	}
	if o.QMP != "" {
		if err := checkSocketPath(o.QMP); err != nil {
			return err
		}
	}
	switch o.Display {
	case "", "none", "vnc", "gtk":
	default:
		return usererr.New(fmt.Sprintf("unknown display %q", o.Display), "use --display none, vnc or gtk")
	}
	if o.CloudInit != "" {
		return checkCloudInit(o.CloudInit)
	}
	return nil
}

// checkDisk returns the disk's absolute path: QEMU reads a relative name
// with a colon before its first slash as a protocol ("nbd:…", "json:…").
func checkDisk(disk string, snapshot bool) (string, error) {
	if disk == "" {
		return "", usererr.New("no disk given", "give the path of a disk c2vm assemble wrote, such as out/linux.img")
	}
	abs, err := filepath.Abs(disk)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", usererr.New(fmt.Sprintf("disk %s: %v", disk, unwrapPathError(err)), "give the path of a disk c2vm assemble wrote, such as out/linux.img")
	}
	if !fi.Mode().IsRegular() {
		return "", usererr.New(fmt.Sprintf("disk %s is not a regular file", disk), "give the path of a disk file c2vm assemble wrote")
	}
	mode := os.O_RDWR
	if snapshot {
		mode = os.O_RDONLY
	}
	f, err := os.OpenFile(abs, mode, 0)
	if err != nil {
		fix := "make it readable by the user running c2vm"
		if !snapshot {
			fix = "make it writable, or add --snapshot to leave it unchanged"
		}
		return "", usererr.New(fmt.Sprintf("cannot open disk %s: %v", disk, unwrapPathError(err)), fix)
	}
	f.Close()
	return abs, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkSocketPath refuses what a Unix socket cannot be bound at: sun_path
// holds 107 bytes and a NUL.
func checkSocketPath(p string) error {
	if len(p) > 107 {
		return usererr.New(fmt.Sprintf("QMP socket path %s is %d bytes; a Unix socket path may have at most 107", p, len(p)),
			"use a shorter --qmp path (or a shorter TMPDIR)")
	}
	if strings.ContainsRune(p, 0) {
		return usererr.New("QMP socket path has a NUL byte", "use a plain file path for --qmp")
	}
	// QEMU removes whatever is at the path before it binds there.
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return usererr.New(fmt.Sprintf("%s exists and is not a socket: QEMU would delete it to put its QMP socket there", p),
			"give --qmp a path where nothing but an old socket is")
	}
	return nil
}

// exposed is the disk's EXPOSE list unless the user turned it off.
func (p *plan) exposed() []string {
	if p.o.NoExpose || p.meta == nil {
		return nil
	}
	return p.meta.ExposedPorts
}
