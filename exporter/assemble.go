package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/c2vm/c2vm/appinit"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/diskformat"
	"github.com/c2vm/c2vm/exporter/ext4"
	"github.com/c2vm/c2vm/exporter/grub"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
	"golang.org/x/sync/errgroup"
)

// Options are assemble's flags.
type Options struct {
	OutDir   string
	Formats  []disk.Format // from ParseFormats: the raw disk, then the formats to write
	Size     int64         // 0: auto
	Firmware disk.Firmware
	Arch     disk.Arch // the machine the disk boots on; "" is amd64
	Cmdline  []string  // from ParseCmdline
	Log      io.Writer // progress lines; nil for none

	Mode      disk.Mode       // auto (default), system or app
	Program   *appinit.Config // app mode: what runs, from the image config
	KernelDir string          // app mode: where the kernel and modules are (initramfs.FindKernel)
	Exposed   []string        // the image's EXPOSE ports, for c2vm.json
	Access    *Access         // root's SSH keys and password; nil for none

	SecureBoot     secureboot.Mode // auto (""), require or off
	SecureBootDirs []string        // where the signed shim and GRUB are, in order; nil: SecureBootDirs()

	start time.Time
}

// Result says what was written.
type Result struct {
	Mode     disk.Mode
	Files    []string // final paths, in the format table's order (linux.img first when written)
	Layout   *disk.Layout
	IDs      disk.IDs
	Estimate RootEstimate
	Boot     rootfs.BootFiles
}

// logf prints a progress line with the time since assembly started.
func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "%5.1fs "+format+"\n", append([]any{time.Since(o.start).Seconds()}, args...)...)
	}
}

// Assemble turns src into a bootable disk in opts.OutDir, written in the
// formats asked for. Every output is written under a temporary name in a
// scratch directory inside OutDir and renamed at the end, the first format
// (linux.img when asked for) last: a failed or killed run leaves none of
// it, and a failed one leaves nothing.
func Assemble(ctx context.Context, src rootfs.Source, opts Options) (*Result, error) {
	opts.start = time.Now()
	if len(opts.Formats) == 0 {
		opts.Formats = disk.Outputs(nil)
	}
	if opts.Firmware == "" {
		opts.Firmware = disk.Hybrid
	}
	if opts.Arch == "" {
		opts.Arch = disk.AMD64
	}
	var err error
	if opts.Firmware, err = opts.Arch.Firmware(opts.Firmware); err != nil {
		return nil, err
	}
	if err := checkTools(opts); err != nil {
		return nil, err
	}
	if err = os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, usererr.New(fmt.Sprintf("cannot make the output directory: %v", err), "give -o a directory you can write")
	}
	outDir, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, err
	}

	b := &build{opts: opts, outDir: outDir}
	if b.work, err = os.MkdirTemp(outDir, ".c2vm-assemble-"); err != nil {
		return nil, err
	}
	defer b.cleanup()
	b.grubImages = grub.Start(ctx, grub.Platforms(opts.Firmware, opts.Arch), b.work)

	opts.logf("scanning %s", src)
	if b.inv, err = src.Scan(ctx); err != nil {
		return nil, err
	}
	for _, n := range b.inv.Notes {
		opts.logf("note: %s", n)
	}
	if err := b.plan(); err != nil {
		return nil, err
	}
	if err := b.run(ctx, src); err != nil {
		return nil, b.explain(err)
	}
	return &Result{Mode: b.mode, Files: b.final, Layout: b.layout, IDs: b.ids, Estimate: b.est, Boot: b.boot}, nil
}

// plan decides the mode and the boot files, and sizes the disk.
func (b *build) plan() error {
	var err error
	b.mode = pickMode(b.opts.Mode, b.inv)
	extra, headroom := int64(0), int64(systemHeadroom)
	if b.mode == disk.ModeApp {
		headroom = appHeadroom
		if b.app, err = prepareApp(&b.opts, b.inv, b.work); err != nil {
			return err
		}
		b.boot, extra = b.app.boot, b.app.bytes
	} else {
		var ok bool
		if b.boot, ok = b.inv.FindBoot(); !ok {
			return usererr.New("the image has no kernel and initramfs (looked for /vmlinuz and /initrd.img, /boot/vmlinuz and /boot/initrd.img, /boot/vmlinuz-VERSION with /boot/initrd.img-VERSION)",
				"boot it in app mode (--mode app: c2vm's kernel runs the image's program), or install a kernel and an initramfs in the image (Debian/Ubuntu: linux-image-amd64 or linux-image-virtual with initramfs-tools); the c2vm frontend adds them")

		}
		logBoot(&b.opts, b.boot)
	}
	if b.est, err = Estimate(b.inv, extra, headroom); err != nil {
		return err
	}
	rootBytes := b.est.Auto
	if b.opts.Size > 0 {
		rootBytes = b.est.Min
	}
	if b.layout, err = disk.NewLayout(b.opts.Firmware, b.opts.Arch, rootBytes, b.opts.Size); err != nil {
		return err
	}
	b.opts.logf("disk %s: root filesystem %s for %s of content, %d inodes", disk.FormatSize(b.layout.DiskBytes), disk.FormatSize(b.layout.Root.Size), disk.FormatSize(b.inv.Content+extra), b.est.Inodes)
	return nil
}

// logBoot says which kernel the disk boots. GRUB chooses at each boot
// (grub.go), so this is what it finds in the tree as assembled.
func logBoot(o *Options, bf rootfs.BootFiles) {
	now := "kernel " + bf.Version
	if bf.Version == "" {
		now = "the kernel they name"
	}
	if len(bf.Stable) > 0 {
		o.logf("booting /%s, the distribution's link, at each boot (now %s); without it the newest kernel in /boot", bf.Stable[0][0], now)
		return
	}
	o.logf("booting the newest kernel in /boot at each boot (now %s)", now)
}

// checkTools fails early, before any work, when a tool is missing.
func checkTools(opts Options) error {
	need := []string{"sfdisk", "grub-mkimage"}
	if opts.Firmware.HasUEFI() {
		need = append(need, "mkfs.vfat", "mcopy", "mmd")
	}
	for _, f := range disk.Outputs(opts.Formats) {
		switch f.Make {
		case disk.MakeQemu, disk.MakeOVA:
			need = append(need, "qemu-img")
		case disk.MakeGCE:
			need = append(need, "tar", "gzip")
		}
	}
	for _, t := range need {
		if _, err := lookTool(t); err != nil {
			return hosttools.Missing(t, err)
		}
	}
	for _, p := range grub.Platforms(opts.Firmware, opts.Arch) {
		if _, err := p.Dir(); err != nil {
			return err
		}
	}
	return nil
}

// build is one assembly's state: temporary files to remove unless renamed.
type build struct {
	opts       Options
	inv        *rootfs.Inventory
	mode       disk.Mode
	app        *appParts // app mode's kernel, initramfs and config
	boot       rootfs.BootFiles
	est        RootEstimate
	layout     *disk.Layout
	outDir     string
	ids        disk.IDs
	work       string                                   // scratch directory inside outDir
	grubImages func() (map[grub.Platform][]byte, error) // made while the source is scanned
	temps      []string                                 // outputs under temporary names, in Outputs order
	final      []string
	access     accessFound // for c2vm.json
	kernel     *captured   // a system disk's kernel, read as the root is written
	signed     *secureboot.Chain
}

func (b *build) cleanup() {
	if b.grubImages != nil {
		b.grubImages() // grub-mkimage may still be writing into work
	}
	if b.work != "" {
		os.RemoveAll(b.work)
	}
}

// explain turns a full filesystem into advice that fits the case: the
// disk's root filesystem, or the host's filesystem holding the output.
func (b *build) explain(err error) error {
	switch {
	case errors.Is(err, ext4.ErrNoSpace):
		return &disk.SizeError{Given: b.layout.DiskBytes, Min: b.layout.DiskBytes + b.layout.DiskBytes/4, Auto: b.opts.Size == 0}
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || strings.Contains(err.Error(), "No space left on device"):
		return usererr.New(fmt.Sprintf("the filesystem holding %s is full: the disk needs up to %s there", b.outDir, disk.FormatSize(b.layout.DiskBytes)),
			"free space there, or write the disk elsewhere with -o")

	}
	return err
}

// tool runs a Debian tool in the scratch directory, where files are named
// relatively: the output path, whatever the user typed, never reaches a
// tool's command line.
func (b *build) tool(ctx context.Context, stdin []byte, env []string, name string, args ...string) error {
	return runIn(ctx, b.work, stdin, env, name, args...)
}

func (b *build) run(ctx context.Context, src rootfs.Source) error {
	const raw = "linux.img"
	f, err := os.OpenFile(filepath.Join(b.work, raw), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(b.layout.DiskBytes); err != nil {
		return err
	}

	b.opts.logf("writing ext4 root filesystem")
	if err := b.writeRoot(ctx, src, f); err != nil {
		return err
	}
	if err := b.checkKernelArch(); err != nil {
		return err
	}
	if err := b.decideSecureBoot(); err != nil {
		return err
	}
	b.assignPartUUIDs()
	b.opts.logf("writing partition table and boot loaders")
	// The ESP needs only the ids and touches no byte of the partition
	// table: it is made while sfdisk waits for the root filesystem to reach
	// the disk (it syncs the file).
	wait := b.startBoot(ctx, raw)
	// LOCK_BLOCK_DEVICE=0: a user's setting must not make sfdisk lock the
	// file, which mtools may hold meanwhile.
	err = b.tool(ctx, []byte(b.layout.SfdiskScript(b.ids.Disk)), []string{"LOCK_BLOCK_DEVICE=0"}, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", "--wipe-partitions", "never", raw)
	core, cfg, werr := wait()
	if err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	// After sfdisk: GRUB's boot code shares the MBR with the partition table.
	if core != nil {
		if err := grub.InstallBIOS(f, b.layout, core, cfg); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	b.opts.logf("raw disk written")
	for _, fm := range disk.Outputs(b.opts.Formats) {
		if err := b.makeFormat(ctx, fm, raw); err != nil {
			return err
		}
		b.temps = append(b.temps, filepath.Join(b.work, fm.File))
	}
	return b.publish()
}

// makeFormat writes format fm from the raw disk in the scratch directory;
// raw itself is already there.
func (b *build) makeFormat(ctx context.Context, fm disk.Format, raw string) error {
	if fm.Make == disk.MakeRaw {
		return nil
	}
	b.opts.logf("converting to %s", fm.Name)
	if d := fm.Dir(); d != "" {
		if err := os.MkdirAll(filepath.Join(b.work, d), 0o755); err != nil {
			return err
		}
	}
	if fm.Make == disk.MakeOVA {
		return b.writeOVA(ctx, fm, raw)
	}
	minVirtual := int64(0)
	if b.opts.Size == 0 {
		minVirtual = disk.MinVirtualSize
	}
	return Convert(ctx, b.work, fm, raw, fm.File, minVirtual)
}

// writeOVA converts the raw disk to a streamOptimized VMDK, the one disk
// format both VirtualBox and VMware import, and packs it with c2vm's OVF.
// A hybrid disk is described as BIOS: every importer boots that, while
// UEFI is opt-in on some.
func (b *build) writeOVA(ctx context.Context, fm disk.Format, raw string) error {
	const vmdk = "ova-disk.vmdk"
	if err := b.tool(ctx, nil, nil, "qemu-img", fm.ConvertArgs(raw, vmdk)...); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(b.work, vmdk))
	// Before WriteOVA digests it: the VMDK's CID is random.
	if err := stableIDs(filepath.Join(b.work, raw), filepath.Join(b.work, vmdk), fm.QemuFmt); err != nil {
		return err
	}
	populated, err := diskformat.Allocated(filepath.Join(b.work, raw))
	if err != nil {
		return err
	}
	mtime := time.Now()
	if epoch, err := sourceDateEpoch(); err != nil {
		return err
	} else if epoch != nil {
		mtime = *epoch
	}
	a := diskformat.DefaultAppliance("linux", b.opts.Firmware == disk.UEFI, b.layout.DiskBytes, populated)
	return diskformat.WriteOVA(filepath.Join(b.work, fm.File), a, filepath.Join(b.work, vmdk), mtime)
}

func (b *build) assignPartUUIDs() {
	l := b.layout
	l.Root.UUID = b.ids.Root
	if l.ESP != nil {
		l.ESP.UUID = b.ids.ESPPart
	}
	if l.BIOSBoot != nil {
		l.BIOSBoot.UUID = b.ids.BIOSPart
	}
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH: no time in the disk is later.
func sourceDateEpoch() (*time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, usererr.New(fmt.Sprintf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v), "set it to a Unix time, such as $(git log -1 --format=%ct)")
	}
	t := time.Unix(n, 0)
	return &t, nil
}

// writeRoot streams the source into our ext4 writer at the root
// partition's offset. The filesystem UUID derives from the digest of what
// was written, known only at the end; metadata_csum_seed lets the writer
// set it last.
func (b *build) writeRoot(ctx context.Context, src rootfs.Source, f *os.File) error {
	epoch, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	fsTime := time.Now()
	if epoch != nil {
		fsTime = *epoch
	}
	meta := b.inv.MetaDigest()
	root := b.layout.Root
	w, err := ext4.NewWriter(f, ext4.Params{Offset: root.Start, Size: root.Size, Inodes: b.est.Inodes, Label: "root",
		UUID: disk.UUIDBytes(disk.DeriveUUID(meta, "provisional")), HashSeed: disk.UUIDBytes(disk.DeriveUUID(meta, "hash-seed")), Time: fsTime})
	if err != nil {
		return err
	}
	sink := newRootSink(w, epoch)
	var into rootfs.Sink = sink
	if b.mode == disk.ModeSystem && b.bootKernel() != "" {
		b.kernel = &captured{path: b.bootKernel(), whole: b.wantKernel()}
		into = &captureSink{Sink: sink, want: b.kernel}
	}
	acc, err := newAccessSink(into, b.opts.Access, b.mode)
	if err == nil {
		err = src.Stream(ctx, acc)
	}
	if err == nil {
		b.access, err = acc.finish()
	}
	if err == nil {
		growth := firstBootFiles(b.inv)
		if note := growthSkipped(b.inv, growth); note != "" && b.app == nil {
			b.opts.logf("%s", note)
		}
		extras := append(growth, bootEnvFiles(b.inv)...)
		if b.app != nil {
			extras = b.app.files
		}
		err = writeExtras(sink, extras)
	}
	if err != nil {
		w.Close() // stops its writer; the output is discarded anyway
		return err
	}
	b.ids = disk.DeriveIDs(sink.Sum())
	w.SetUUID(disk.UUIDBytes(b.ids.RootFS))
	return w.Close()
}

// startBoot writes, for UEFI, the ESP with GRUB's image and the disk's
// grub.cfg beside it; wait returns the BIOS image (nil without BIOS) and
// the BIOS grub.cfg, to be installed once the partition table is written.
func (b *build) startBoot(ctx context.Context, raw string) (wait func() ([]byte, string, error)) {
	cfg := grub.Config{RootUUID: b.ids.RootFS, Boot: b.boot, Cmdline: b.opts.Cmdline, Follow: b.mode == disk.ModeSystem}
	if b.mode == disk.ModeApp {
		cfg.Cmdline = append(append([]string{}, appCmdline...), cfg.Cmdline...)
	}
	var core []byte
	var g errgroup.Group
	g.Go(func() error {
		imgs, err := b.grubImages()
		if err != nil {
			return err
		}
		core = imgs[grub.PC]
		if b.layout.ESP == nil {
			return nil
		}
		epoch, err := sourceDateEpoch()
		if err != nil {
			return err
		}
		efi := grub.EFI(b.opts.Arch)
		esp := grub.ESP{Platform: efi, Image: imgs[efi],
			Config: cfg.Script(efi), Serial: b.ids.ESPSerial, Epoch: epoch}
		if c := b.signed; c != nil {
			esp.Image = c.GRUB
			esp.Signed = &grub.Signed{Shim: c.Shim, MokManager: c.MokManager, Vendor: c.Vendor}
		}
		return grub.WriteESP(ctx, b.work, raw, b.layout, esp)
	})
	return func() ([]byte, string, error) {
		err := g.Wait() // before core is read
		return core, cfg.Script(grub.PC), err
	}
}

// publish renames the outputs into place, the first one (linux.img when
// asked for) last, so that it in the output directory means the run
// finished.
func (b *build) publish() error {
	// c2vm.json before the disks: a linux.img without it would read as a
	// system disk to c2vm run.
	meta := diskmeta.Meta{Mode: string(b.mode), Firmware: string(b.opts.Firmware), ExposedPorts: b.opts.Exposed,
		SecureBoot: b.signed != nil, Arch: string(b.opts.Arch)}
	b.access.describe(&meta)
	if err := diskmeta.Write(b.work, meta); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(b.work, diskmeta.FileName), filepath.Join(b.outDir, diskmeta.FileName)); err != nil {
		return err
	}
	outs := disk.Outputs(b.opts.Formats)
	names := make([]string, len(b.temps))
	for i := len(b.temps) - 1; i >= 0; i-- {
		names[i] = filepath.Join(b.outDir, outs[i].File)
		if err := placeOutput(b.temps[i], names[i], outs[i]); err != nil {
			return err
		}
	}
	b.final = names
	if d, err := os.Open(b.outDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// placeOutput renames an output into place, making its directory first
// (containerdisk's disk/). A file with an owner gets it when c2vm runs as
// root; otherwise its mode lets any user read it, which is all KubeVirt's
// QEMU needs, and an image build can still chown it.
func placeOutput(tmp, final string, f disk.Format) error {
	if f.Dir() != "" {
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return err
		}
	}
	if f.Owner != 0 && os.Geteuid() == 0 {
		if err := os.Chown(tmp, f.Owner, f.Owner); err != nil {
			return err
		}
	}
	return os.Rename(tmp, final)
}
