package exporter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options are assemble's flags.
type Options struct {
	OutDir   string
	Formats  []Format // from ParseFormats; raw first
	Size     int64    // 0: auto
	Firmware Firmware
	Cmdline  string
	Log      io.Writer // progress lines; nil for none

	start time.Time
}

// Result says what was written.
type Result struct {
	Files    []string // final paths, linux.img first
	Layout   *Layout
	IDs      IDs
	Estimate RootEstimate
	Boot     BootFiles
}

// logf prints a progress line with the time since assembly started.
func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "%5.1fs "+format+"\n", append([]any{time.Since(o.start).Seconds()}, args...)...)
	}
}

// Assemble turns src into a bootable disk in opts.OutDir. Every output is
// written under a temporary name and renamed at the end, linux.img last: a
// failed or killed run leaves no linux.img.
func Assemble(ctx context.Context, src Source, opts Options) (*Result, error) {
	opts.start = time.Now()
	if len(opts.Formats) == 0 {
		opts.Formats = []Format{formats[0]}
	}
	if opts.Firmware == "" {
		opts.Firmware = Hybrid
	}
	if err := checkTools(ctx, opts); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	outDir, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, err
	}

	opts.logf("scanning %s", src)
	inv, err := src.Scan(ctx)
	if err != nil {
		return nil, err
	}
	boot, ok := inv.FindBoot()
	if !ok {
		return nil, &InputError{Msg: fmt.Sprintf("%s has no kernel and initramfs (looked for /vmlinuz and /initrd.img, /boot/vmlinuz and /boot/initrd.img, /boot/vmlinuz-VERSION with /boot/initrd.img-VERSION)", src),
			Fix: "install a kernel and an initramfs in the image (Debian/Ubuntu: apt-get install linux-image-amd64 or linux-image-virtual, with initramfs-tools), or build through the c2vm frontend, which adds them"}
	}
	est := Estimate(inv)
	rootBytes := est.Auto
	if opts.Size > 0 {
		rootBytes = est.Min
	}
	layout, err := NewLayout(opts.Firmware, rootBytes, opts.Size)
	if err != nil {
		return nil, err
	}
	opts.logf("disk %s: root filesystem %s for %s of content, %d inodes", FormatSize(layout.DiskBytes), FormatSize(layout.Root.Size), FormatSize(est.Content), est.Inodes)

	b := &build{opts: opts, inv: inv, boot: boot, est: est, layout: layout, outDir: outDir}
	defer b.cleanup()
	if err := b.run(ctx, src); err != nil {
		return nil, err
	}
	return &Result{Files: b.final, Layout: layout, IDs: b.ids, Estimate: est, Boot: boot}, nil
}

// checkTools fails early, before any work, when a tool is missing.
func checkTools(ctx context.Context, opts Options) error {
	need := []string{"mke2fs", "tune2fs", "sfdisk", "grub-mkimage"}
	if opts.Firmware.uefi() {
		need = append(need, "mkfs.vfat", "mcopy", "mmd")
	}
	if len(opts.Formats) > 1 {
		need = append(need, "qemu-img")
	}
	for _, t := range need {
		if _, err := lookTool(t); err != nil {
			return err
		}
	}
	if opts.Firmware.bios() {
		if _, err := grubDir("i386-pc"); err != nil {
			return err
		}
	}
	if opts.Firmware.uefi() {
		if _, err := grubDir("x86_64-efi"); err != nil {
			return err
		}
	}
	return checkMke2fs(ctx)
}

// build is one assembly's state: temporary files to remove unless renamed.
type build struct {
	opts   Options
	inv    *Inventory
	boot   BootFiles
	est    RootEstimate
	layout *Layout
	outDir string
	ids    IDs
	work   string   // scratch directory inside outDir
	temps  []string // outputs under temporary names, in Formats order
	final  []string
}

func (b *build) cleanup() {
	if b.work != "" {
		os.RemoveAll(b.work)
	}
}

func (b *build) run(ctx context.Context, src Source) error {
	var err error
	b.work, err = os.MkdirTemp(b.outDir, ".c2vm-assemble-")
	if err != nil {
		return err
	}
	raw := filepath.Join(b.work, "linux.img")
	f, err := os.OpenFile(raw, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(b.layout.DiskBytes); err != nil {
		return err
	}

	b.opts.logf("writing ext4 root filesystem")
	digest, xattrs, err := b.writeRoot(ctx, src, raw)
	if err != nil {
		return err
	}
	fsPath := fmt.Sprintf("%s?offset=%d", raw, b.layout.Root.Start)
	if err := setXattrs(ctx, b.work, fsPath, xattrs); err != nil {
		return err
	}
	b.ids = deriveIDs(digest)
	b.assignPartUUIDs()
	if err := run(ctx, nil, nil, "tune2fs", "-U", b.ids.RootFS, fsPath); err != nil {
		return err
	}
	b.opts.logf("writing partition table and boot loaders")
	if err := run(ctx, []byte(b.layout.sfdiskScript(b.ids.Disk)), nil, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", "--wipe-partitions", "never", raw); err != nil {
		return err
	}
	if err := b.writeBoot(ctx, f, raw); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	b.temps = append(b.temps, raw)
	b.opts.logf("raw disk written")
	for _, fm := range b.opts.Formats[1:] {
		b.opts.logf("converting to %s", fm.Name)
		tmp := filepath.Join(b.work, fm.FileName())
		if err := fm.convert(ctx, raw, tmp); err != nil {
			return err
		}
		b.temps = append(b.temps, tmp)
	}
	return b.publish()
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

// writeRoot streams the source as a tar into mke2fs, which builds the ext4
// at the root partition's offset. It returns the digest of the stream and
// the xattrs mke2fs left out.
func (b *build) writeRoot(ctx context.Context, src Source, raw string) ([]byte, []xattr, error) {
	meta := b.inv.MetaDigest()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// An OS pipe with a large buffer straight into mke2fs's stdin, written
	// in 1 MiB chunks: far fewer syscalls and wake-ups than an io.Pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	root := b.layout.Root
	// A provisional UUID: the real one derives from the stream's digest and
	// is set with tune2fs afterwards, cheap thanks to metadata_csum_seed.
	args := []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256", "-m", "0", "-L", "root",
		"-N", fmt.Sprint(b.est.Inodes),
		"-U", deriveUUID(meta, "provisional"),
		"-O", "^orphan_file,metadata_csum_seed",
		"-E", fmt.Sprintf("offset=%d,hash_seed=%s,lazy_itable_init=1,nodiscard", root.Start, deriveUUID(meta, "hash-seed")),
		"-d", "-", raw, fmt.Sprintf("%dk", root.Size/1024)}
	type result struct {
		digest []byte
		xattrs []xattr
		err    error
	}
	streamed := make(chan result, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		ts := newTarStream(bw)
		err := src.Stream(ctx, ts)
		if err == nil {
			err = writeExtras(ts, firstBootFiles(b.inv))
		}
		var d []byte
		if err == nil {
			d, err = ts.close()
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.Close() // EOF for mke2fs, also after an error
		streamed <- result{d, ts.xattrs, err}
	}()
	mkfsErr := runMke2fs(ctx, pr, args)
	res := <-streamed
	// A broken pipe means mke2fs stopped reading: its own error says why.
	if res.err != nil && !errors.Is(res.err, syscall.EPIPE) {
		return nil, nil, res.err
	}
	if mkfsErr != nil {
		if strings.Contains(mkfsErr.Error(), "libarchive") {
			return nil, nil, &MissingToolError{Tool: "libarchive, which mke2fs loads to read tar input,", Package: "libarchive13"}
		}
		if isNoSpace(mkfsErr.Error()) {
			return nil, nil, &SizeError{Given: b.layout.DiskBytes, Min: b.layout.DiskBytes + b.layout.DiskBytes/4}
		}
		return nil, nil, mkfsErr
	}
	return res.digest, res.xattrs, res.err
}

func isNoSpace(s string) bool {
	for _, m := range []string{"Could not allocate block", "No space left", "Could not allocate inode", "Could not allocate"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// writeBoot installs GRUB for the firmwares the disk supports.
func (b *build) writeBoot(ctx context.Context, f *os.File, raw string) error {
	cfg := grubConfig(b.ids.RootFS, b.boot, b.opts.Cmdline)
	md, err := memdiskTar(cfg)
	if err != nil {
		return err
	}
	if b.layout.BIOSBoot != nil {
		core, err := grubImage(ctx, b.work, "i386-pc", md)
		if err != nil {
			return err
		}
		if err := installBIOS(f, b.layout, core); err != nil {
			return err
		}
	}
	if b.layout.ESP != nil {
		efi, err := grubImage(ctx, b.work, "x86_64-efi", md)
		if err != nil {
			return err
		}
		if err := b.writeESP(ctx, raw, efi); err != nil {
			return err
		}
	}
	return nil
}

// writeESP makes the FAT32 ESP in place and copies GRUB's EFI image to the
// removable-media path every UEFI firmware tries.
func (b *build) writeESP(ctx context.Context, raw string, efi []byte) error {
	esp := b.layout.ESP
	sector := esp.Start / sectorSize
	if err := run(ctx, nil, nil, "mkfs.vfat", "--invariant", "-F", "32", "-s", "1", "-n", "ESP",
		"-i", fmt.Sprintf("%08X", b.ids.ESPSerial), "--offset", fmt.Sprint(sector), "-h", fmt.Sprint(sector),
		raw, fmt.Sprint(esp.Size/1024)); err != nil {
		return err
	}
	efiPath := filepath.Join(b.work, "BOOTX64.EFI")
	if err := os.WriteFile(efiPath, efi, 0o644); err != nil {
		return err
	}
	img := fmt.Sprintf("%s@@%d", raw, esp.Start)
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		env = append(env, "SOURCE_DATE_EPOCH=0")
	}
	if err := run(ctx, nil, env, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	return run(ctx, nil, env, "mcopy", "-i", img, efiPath, "::/EFI/BOOT/BOOTX64.EFI")
}

// publish renames the outputs into place, linux.img last, so that a
// linux.img in the output directory means the run finished.
func (b *build) publish() error {
	names := make([]string, len(b.temps))
	for i, fm := range b.opts.Formats {
		names[i] = filepath.Join(b.outDir, fm.FileName())
	}
	for i := len(b.temps) - 1; i >= 0; i-- {
		if err := os.Rename(b.temps[i], names[i]); err != nil {
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
