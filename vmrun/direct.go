package vmrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/c2vm/c2vm/exporter/initramfs"
	"github.com/c2vm/c2vm/internal/owndir"
)

// The direct kernel boot: QEMU starts the kernel and initramfs that the
// disk's GRUB would load, with the command line its grub.cfg gives, so
// the guest skips the firmware's start and GRUB (and, under TCG, the
// kernel decompressing itself). The disk itself is unchanged and still
// boots through the firmware on every other hypervisor.

// directBoot is a run's direct boot, decided before QEMU starts.
type directBoot struct {
	kernel, initrd string // files for QEMU
	cmdline        string
	lean           bool // on leanMachine, with the slim initramfs
}

// errNotAppDisk is a disk whose grub.cfg is not an app disk's: --boot
// auto starts those through the firmware, and says nothing unless its
// c2vm.json says it is one.
var errNotAppDisk = errors.New("not an app disk")

// planBoot decides how the guest starts. A disk that cannot be started
// directly, whatever the reason, boots through the firmware with a note.
func (p *plan) planBoot(ctx context.Context) {
	if !p.wantsDirect() {
		return
	}
	d, err := p.safeDirectFiles(ctx)
	if err != nil {
		if p.o.Boot == bootKernel || p.appMode() || !errors.Is(err, errNotAppDisk) {
			p.notes = append(p.notes, "c2vm: note: booting through the firmware: "+err.Error())
		}
		return
	}
	p.direct = d
	p.notes = append(p.notes, "c2vm: starting the disk's kernel directly (--boot firmware starts it through the firmware and GRUB)")
}

// safeDirectFiles is directFiles, with a panic (a reader's bug meeting
// a disk it did not foresee) turned into an error: the disk then boots
// through its firmware like any other odd one.
func (p *plan) safeDirectFiles(ctx context.Context) (d *directBoot, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("reading its boot files failed: %v", r)
		}
	}()
	return p.directFiles(ctx)
}

// wantsDirect tells whether the run tries the direct boot: asked for, or
// auto with no firmware asked for (--firmware bios and uefi boot through
// that firmware, to try it). Secure Boot checks what the firmware loads,
// so it always boots through the firmware; checkBoot refuses it with
// --boot kernel. An arm64 disk boots through its firmware too.
func (p *plan) wantsDirect() bool {
	if p.arch == archARM64 {
		// The direct boot reads x86 bzImages; checkArch refused --boot
		// kernel.
		return false
	}
	switch p.o.Boot {
	case bootKernel:
		return true
	case "", bootAuto:
		return !p.o.SecureBoot && (p.o.Firmware == "" || p.o.Firmware == "auto")
	}
	return false
}

// directFiles makes the direct boot's files, or finds them made by an
// earlier run of the same disk.
func (p *plan) directFiles(ctx context.Context) (*directBoot, error) {
	st, err := p.bootStore()
	if err != nil {
		return nil, err
	}
	rec := st.record()
	if rec == nil || !rec.fits(p.o.Disk, p.id, p.image.Format) {
		if rec, err = p.extractBoot(ctx, st); err != nil {
			return nil, err
		}
	}
	if !rec.App && p.o.Boot != bootKernel {
		return nil, errNotAppDisk
	}
	d := &directBoot{kernel: st.path(bootKernelFile), initrd: st.path(bootInitrdFile), lean: p.leanHardware()}
	if p.accelKind == "tcg" && p.derive(ctx, st, rec, &rec.Vmlinux, bootVmlinuxFile, makeVmlinux) {
		d.kernel = st.path(bootVmlinuxFile)
	}
	if d.lean && rec.App && p.derive(ctx, st, rec, &rec.Slim, bootSlimFile, makeSlim) {
		d.initrd = st.path(bootSlimFile)
	}
	args := append(append(append([]string(nil), rec.GrubArgs...), p.directArgs()...), rec.EnvArgs...)
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	d.cmdline = strings.Join(args, " ")
	return d, nil
}

// directArgs are kernel arguments that save time under emulation, added
// before the guest's own boot.env words, which can override them. The
// crypto self-tests (about 0.6 s under TCG) check the kernel's own
// implementations, not anything of the guest's; FIPS mode runs them
// anyway. Under TCG the guest's TSC is the host's, the same on every
// vCPU, yet the kernel's synchronization check fails there and leaves it
// on the slower HPET; tsc=reliable skips the check.
func (p *plan) directArgs() []string {
	args := []string{"cryptomgr.notests"}
	if p.accelKind == "tcg" {
		args = append(args, "tsc=reliable")
	}
	return args
}

// bootStore is where the direct boot's files live: the VM's directory,
// or, for a run that keeps no VM, its temporary one.
func (p *plan) bootStore() (bootStore, error) {
	if p.vm != nil {
		return bootStore{root: p.vm.root, dir: p.vm.path}, nil
	}
	if p.workRoot == nil {
		r, err := os.OpenRoot(p.work)
		if err != nil {
			return bootStore{}, err
		}
		p.workRoot = r
	}
	return bootStore{root: p.workRoot, dir: p.work}, nil
}

// extractBoot copies the disk's kernel and initramfs into st and records
// where they came from.
func (p *plan) extractBoot(ctx context.Context, st bootStore) (*bootRecord, error) {
	if p.head == nil {
		return nil, fmt.Errorf("%w: its first sectors cannot be read", errNotAppDisk)
	}
	g, parts, err := grubOf(p.head)
	if err != nil && (g == nil || !g.app) {
		return nil, fmt.Errorf("%w: %v", errNotAppDisk, err)
	}
	if err != nil {
		return nil, err
	}
	if !g.app && p.o.Boot != bootKernel {
		return nil, errNotAppDisk
	}
	src, err := rawContents(ctx, p.o.Disk, p.image.Format, p.work)
	if err != nil {
		return nil, fmt.Errorf("reading the disk: %v", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	db, err := readDiskBoot(src, fi.Size(), g, parts)
	if err != nil {
		return nil, err
	}
	var kernel bytes.Buffer
	if err := db.fs.readFile(db.kernel, &kernel, maxKernelBytes); err != nil {
		return nil, fmt.Errorf("the kernel: %v", err)
	}
	if _, err := checkBzImage(kernel.Bytes()); err != nil {
		return nil, err
	}
	if err := owndir.WriteFile(st.root, bootKernelFile, func(f *os.File) error {
		_, err := f.Write(kernel.Bytes())
		return err
	}); err != nil {
		return nil, err
	}
	if err := owndir.WriteFile(st.root, bootInitrdFile, func(f *os.File) error {
		return db.fs.readFile(db.initrd, f, maxInitrdBytes)
	}); err != nil {
		return nil, fmt.Errorf("the initramfs: %v", err)
	}
	// QEMU refuses, rather than the run falling back, an initramfs the
	// kernel's header says it cannot reach.
	if fi, err := st.root.Stat(bootInitrdFile); err != nil {
		return nil, err
	} else if limit := bzHeader(kernel.Bytes()).initrdAddrMax(); fi.Size() >= limit {
		return nil, fmt.Errorf("its initramfs of %d bytes is more than its kernel takes (initrd_addr_max %#x)", fi.Size(), limit)
	}
	rec := &bootRecord{Recipe: bootRecipe, Disk: p.o.Disk, Identity: p.id, Format: p.image.Format,
		App: db.app, GrubArgs: db.grubArgs, EnvArgs: db.envArgs}
	return rec, st.writeRecord(rec)
}

// maxInitrdBytes bounds an initramfs: app mode's is 20 MiB, Debian's
// largest about 80.
const maxInitrdBytes = 256 << 20

// derive makes a file derived from the disk's kernel or initramfs the
// first time a run needs it, and records whether it could be made; it
// tells whether the file is there to use. A failure costs only the time:
// the run uses the disk's own file, and so do later runs of the same
// files.
func (p *plan) derive(ctx context.Context, st bootStore, rec *bootRecord, state *string, name string,
	build func(context.Context, bootStore, *os.File) (bool, error)) bool {
	if *state == derivedMade && st.regular(name) {
		return true
	}
	if *state == derivedNone {
		return false
	}
	made := false
	err := owndir.WriteFile(st.root, name, func(f *os.File) error {
		var err error
		made, err = build(ctx, st, f)
		if err == nil && !made {
			err = errNotMade
		}
		return err
	})
	switch {
	case err == nil:
		*state = derivedMade
	case errors.Is(err, errNotMade):
		*state = derivedNone
	default:
		// Not tried again for these files: a hostile disk's would cost
		// the same time on every run.
		*state = derivedNone
		p.notes = append(p.notes, fmt.Sprintf("c2vm: note: %s: %v (the disk's own file boots instead)", name, err))
	}
	if werr := st.writeRecord(rec); werr != nil {
		p.notes = append(p.notes, fmt.Sprintf("c2vm: note: cannot record the direct boot's files: %v", werr))
	}
	return *state == derivedMade
}

// errNotMade is a derived file this disk's files do not give.
var errNotMade = errors.New("not made")

// makeVmlinux writes the disk's kernel decompressed, when it is an ELF
// with a PVH entry inside a payload compressed as read here.
func makeVmlinux(ctx context.Context, st bootStore, out *os.File) (bool, error) {
	k, err := st.open(bootKernelFile)
	if err != nil {
		return false, err
	}
	defer k.Close()
	b, err := readLimited(k, maxKernelBytes)
	if err != nil {
		return false, err
	}
	payload, err := checkBzImage(b)
	if err != nil {
		return false, err
	}
	return writeVmlinux(ctx, payload, out)
}

// makeSlim writes the app initramfs with DirectModules only; an
// initramfs that is not c2vm's app one is not made slim.
func makeSlim(_ context.Context, st bootStore, out *os.File) (bool, error) {
	in, err := st.open(bootInitrdFile)
	if err != nil {
		return false, err
	}
	defer in.Close()
	err = initramfs.Slim(in, out, initramfs.DirectModules)
	if errors.Is(err, initramfs.ErrNotApp) {
		return false, nil
	}
	return err == nil, err
}
