package exporter

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/initramfs"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/usererr"
)

// App mode: any image — a scratch Go binary, distroless, busybox — boots
// with c2vm's kernel and initramfs and c2vm's own init as PID 1, which runs
// the image's program. The image's root filesystem goes on the disk as it
// is; c2vm's parts live in /.c2vm: the kernel, the initramfs and the
// program's config, which the init reads after mounting the root.

// appDir holds c2vm's parts on an app-mode disk.
const appDir = ".c2vm"

// appCmdline is what app mode adds to the kernel command line: a quiet
// console (it is the program's terminal) and a power-off instead of a hang
// should the init ever fail.
var appCmdline = []string{"quiet", "panic=-1"}

// pickMode resolves auto: a tree with a kernel, an initramfs and an init
// boots as a system; anything else runs as an app.
func pickMode(m disk.Mode, inv *rootfs.Inventory) disk.Mode {
	if m != disk.ModeAuto && m != "" {
		return m
	}
	_, boot := inv.FindBoot()
	for _, init := range []string{"sbin/init", "usr/sbin/init", "lib/systemd/systemd", "usr/lib/systemd/systemd"} {
		if boot && inv.Has(init) {
			return disk.ModeSystem
		}
	}
	return disk.ModeApp
}

// appParts is what app mode adds: the files under /.c2vm and the boot
// files pointing at them.
type appParts struct {
	files  []extraFile
	boot   rootfs.BootFiles
	bytes  int64  // what they take on the root filesystem
	kernel string // c2vm's kernel image on this host
}

// prepareApp finds the kernel, builds the initramfs into work and makes the
// program's config.
func prepareApp(o *Options, inv *rootfs.Inventory, work string) (*appParts, error) {
	if inv.Has(appDir) {
		return nil, usererr.New("the image already has /"+appDir+", where app mode puts c2vm's kernel, initramfs and init config",
			"remove /"+appDir+" from the image, or boot it in system mode (--mode system, C2VM_MODE=system) if it has its own kernel and init")

	}
	cfg := o.Program
	if cfg == nil || len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		if o.Mode == disk.ModeAuto || o.Mode == "" {
			return nil, usererr.New("the image has no kernel, initramfs and init to boot as a system (looked for /boot/vmlinuz-VERSION with its initrd, /sbin/init, systemd), and names no program (ENTRYPOINT or CMD) to run in app mode",
				"install a kernel and an init in the image (Debian/Ubuntu: linux-image-amd64 or linux-image-virtual, initramfs-tools, systemd-sysv; the c2vm frontend adds them), or give a program to run with c2vm's kernel: --cmd or --entrypoint")

		}
		return nil, usererr.New("app mode runs the image's program, and this image names none (no ENTRYPOINT or CMD)",
			"give one with --entrypoint or --cmd (a CMD or ENTRYPOINT in the Dockerfile through BuildKit)")

	}
	if err := cfg.Validate(); err != nil {
		return nil, usererr.New(fmt.Sprintf("the image config cannot be run: %v", err), "fix ENTRYPOINT, CMD, ENV, WORKDIR, USER or STOPSIGNAL in the image")
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	k, err := initramfs.FindKernel(o.KernelDir)
	if err != nil {
		return nil, err
	}
	k.Logf = func(format string, args ...any) { o.logf("note: "+format, args...) }
	self, err := staticSelf()
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := writeInitramfs(initrd, k, self); err != nil {
		return nil, err
	}
	img, err := k.OpenImage()
	if err != nil {
		return nil, err
	}
	kernelPath := img.Name()
	img.Close()
	p := &appParts{boot: rootfs.BootFiles{Kernel: appDir + "/vmlinuz", Initrd: appDir + "/initrd.img", Version: k.Version}, kernel: kernelPath}
	p.files = []extraFile{
		{name: appDir},
		{name: appDir + "/vmlinuz", src: kernelPath},
		{name: appDir + "/initrd.img", src: initrd},
		{name: appDir + "/config.json", body: string(cfgJSON) + "\n"},
	}
	for _, f := range p.files[1:3] {
		fi, err := os.Stat(f.src)
		if err != nil {
			return nil, err
		}
		p.bytes += fi.Size()
	}
	o.logf("app mode: kernel %s from %s, initramfs %s", k.Version, k.Dir, disk.FormatSize(p.bytes))
	return p, nil
}

func writeInitramfs(path string, k *initramfs.Kernel, init string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := initramfs.Build(f, k, init, initramfs.DefaultModules); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// staticSelf is this binary, which becomes the guest's /init: it must not
// need a C library, which an app image may not have and the initramfs
// certainly has not.
func staticSelf() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := elf.Open(self)
	if err != nil {
		return "", fmt.Errorf("reading %s: %v", self, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", usererr.New(fmt.Sprintf("%s is dynamically linked: in app mode it becomes the VM's init, where no C library exists", self),
				"build c2vm with CGO_ENABLED=0 (make build does), or run it from its image")

		}
	}
	return self, nil
}
