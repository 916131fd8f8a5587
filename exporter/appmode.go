package exporter

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

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
	k, err := initramfs.FindKernel(archKernelDir(o.KernelDir, o.Arch))
	if err != nil {
		return nil, err
	}
	k.Logf = func(format string, args ...any) { o.logf("note: "+format, args...) }
	kernelPath, err := checkAppKernel(k, o.Arch)
	if err != nil {
		return nil, err
	}
	init, err := initFor(o.Arch)
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := writeInitramfs(initrd, k, init, o.Arch); err != nil {
		return nil, err
	}
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

func writeInitramfs(path string, k *initramfs.Kernel, init string, arch disk.Arch) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := initramfs.Build(f, k, init, initramfs.ModulesFor(arch)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// archKernelDir is the kernel root for arch under dir: dir/ARCH when dir
// holds one per machine (the c2vm image's /usr/lib/c2vm/kernel), else dir.
func archKernelDir(dir string, arch disk.Arch) string {
	if dir == "" {
		return dir
	}
	sub := filepath.Join(dir, string(arch))
	if fi, err := os.Stat(filepath.Join(sub, "boot")); err == nil && fi.IsDir() {
		return sub
	}
	return dir
}

// checkAppKernel returns the path of k's image, refusing one for another
// machine than the disk's.
func checkAppKernel(k *initramfs.Kernel, arch disk.Arch) (string, error) {
	img, err := k.OpenImage()
	if err != nil {
		return "", err
	}
	defer img.Close()
	head := make([]byte, initramfs.HeadSize)
	n, _ := io.ReadFull(img, head)
	if a := wrongArch(head[:n], arch); a != "" {
		return "", usererr.New(fmt.Sprintf("c2vm's kernel %s is for %s machines, and the disk is for %s", img.Name(), a, arch),
			fmt.Sprintf("give --kernel-dir a root with a kernel for %s (dpkg -x linux-image-*-%s.deb DIR), or one holding %s/boot and %s/lib/modules", arch, arch, arch, arch))
	}
	return img.Name(), nil
}

// initDirs are where the init of another machine's disk is looked for:
// $C2VM_INIT_DIR, the c2vm image's /usr/lib/c2vm/init (its Dockerfile),
// and this binary's own directory.
func initDirs() []string {
	var dirs []string
	if d := os.Getenv("C2VM_INIT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/usr/lib/c2vm/init")
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	return dirs
}

// initFor is the c2vm binary that becomes the guest's /init on a disk of
// arch: this binary on its own machine, else c2vm-ARCH from initDirs. It
// must not need a C library, which an app image may not have and the
// initramfs certainly has not.
func initFor(arch disk.Arch) (string, error) {
	if string(arch) == runtime.GOARCH {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		return self, checkInit(self, arch)
	}
	name := "c2vm-" + string(arch)
	for _, d := range initDirs() {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, checkInit(p, arch)
		}
	}
	return "", usererr.New(fmt.Sprintf("no c2vm binary for %s to run as the VM's init: looked for %s in %s", arch, name, strings.Join(initDirs(), ", ")),
		fmt.Sprintf("build one (CGO_ENABLED=0 GOARCH=%s go build -o %s ./cmd/c2vm) into one of those directories or $C2VM_INIT_DIR, or run c2vm from its image, which has both", arch, name))
}

// elfMachines are the ELF machine of each arch.
var elfMachines = map[disk.Arch]elf.Machine{disk.AMD64: elf.EM_X86_64, disk.ARM64: elf.EM_AARCH64}

// checkInit refuses an init that is dynamically linked or for another
// machine.
func checkInit(p string, arch disk.Arch) error {
	f, err := elf.Open(p)
	if err != nil {
		return usererr.New(fmt.Sprintf("reading %s, the VM's init: %v", p, err), "give a static c2vm binary there")
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		return usererr.New(fmt.Sprintf("%s is a binary for %s, not for %s", p, f.Machine, arch),
			fmt.Sprintf("put a c2vm binary built with GOARCH=%s there", arch))
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return usererr.New(fmt.Sprintf("%s is dynamically linked: in app mode it becomes the VM's init, where no C library exists", p),
				"build c2vm with CGO_ENABLED=0 (make build does), or run it from its image")
		}
	}
	return nil
}
