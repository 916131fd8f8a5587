package initramfs

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/exporter/disk"
)

// DefaultModules are what a VM on a common hypervisor needs from the
// initramfs: its disk controller (QEMU/KVM, Hyper-V, VMware, Xen, and the
// emulated AHCI/PIIX/NVMe/LSI ones), ext4 and its checksum, its NIC, the
// ACPI power button with the evdev interface the init reads it through,
// virtio-rng (without an entropy source the kernel's random number
// generator takes minutes to start under emulation, and DHCP and many
// programs wait for it), and, for kernels that build them as modules, raw
// packet sockets (DHCP) and the RTC. Names not in a kernel are skipped with a note: kernels build
// different things in.
var DefaultModules = []string{
	"virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "nvme",
	"hv_vmbus", "hv_storvsc", "vmw_pvscsi", "mptspi", "xen-blkfront",
	"ext4", "crc32c",
	"virtio_net", "e1000", "e1000e", "vmxnet3", "hv_netvsc", "xen-netfront",
	"button", "evdev", "virtio_rng",
	"af_packet", "rtc_cmos",
}

// ARM64Modules are DefaultModules for arm64 machines: QEMU's virt machine
// (virtio over PCI or MMIO, the PL031 clock), AWS Graviton (NVMe, ENA),
// Google's Tau T2A (NVMe, gVNIC), Azure (Hyper-V's vmbus), and the
// NVMe, SATA and vmxnet3 or e1000e devices of VMware Fusion, Parallels
// and UTM on Apple silicon. PC-only drivers (PIIX, LSI, Xen) are left out.
var ARM64Modules = []string{
	"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "ahci", "sd_mod", "nvme",
	"hv_vmbus", "hv_storvsc",
	"ext4", "crc32c",
	"virtio_net", "ena", "gve", "hv_netvsc", "vmxnet3", "e1000e",
	"button", "evdev", "virtio_rng",
	"af_packet", "rtc_pl031",
}

// Bounds on what is read from the kernel directory.
const (
	maxIndexBytes  = 32 << 20  // modules.dep, modules.alias…
	maxModuleBytes = 128 << 20 // one module, decompressed
)

// modName normalizes a module name: modprobe treats - and _ alike.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// nameOfPath is the module name of kernel/…/xen-blkfront.ko.xz.
func nameOfPath(p string) string {
	base := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return modName(strings.TrimSuffix(base, ".ko"))
}

func isModuleFile(p string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// index is what is known of a kernel's modules: from depmod's files when
// the kernel was installed, or from the modules themselves (their .modinfo)
// when it was only unpacked (dpkg -x ships no modules.dep).
type index struct {
	root      *os.Root
	dir       string              // the modules directory, in root
	paths     map[string]string   // name → path relative to dir
	deps      map[string][]string // name → dependencies; absent: read modinfo
	pre, post map[string][]string // softdeps (names or aliases)
	aliases   map[string][]string // alias → names, exact aliases only
	builtin   map[string]bool     // built-in names and their aliases
	depmod    bool                // modules.dep was there
}

func loadIndex(r *os.Root, dir string) (*index, error) {
	ix := &index{root: r, dir: dir, paths: map[string]string{}, deps: map[string][]string{},
		pre: map[string][]string{}, post: map[string][]string{}, aliases: map[string][]string{}, builtin: map[string]bool{}}
	if err := ix.readBuiltin(); err != nil {
		return nil, err
	}
	dep, err := readBounded(r, dir+"/modules.dep", maxIndexBytes)
	switch {
	case err == nil:
		ix.depmod = true
		if err := ix.parseDep(dep); err != nil {
			return nil, err
		}
		return ix, ix.readSoftdepsAndAliases()
	case notExist(err):
		return ix, ix.walk()
	}
	return nil, err
}

// parseDep reads "kernel/a.ko: kernel/b.ko kernel/c.ko" lines.
func (ix *index) parseDep(data []byte) error {
	for _, line := range strings.Split(string(data), "\n") {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		p, ok := clean(strings.TrimSpace(mod))
		if !ok || !isModuleFile(p) {
			return fmt.Errorf("%s/modules.dep: bad module path %q", ix.dir, mod)
		}
		name := nameOfPath(p)
		ix.paths[name] = p
		ix.deps[name] = []string{}
		for _, d := range strings.Fields(deps) {
			ix.deps[name] = append(ix.deps[name], nameOfPath(d))
		}
	}
	return nil
}

// readBuiltin reads modules.builtin and, when there, the aliases of
// built-in modules from modules.builtin.modinfo ("name.alias=value").
func (ix *index) readBuiltin() error {
	data, err := readBounded(ix.root, ix.dir+"/modules.builtin", maxIndexBytes)
	if err != nil && !notExist(err) {
		return err
	}
	for _, line := range strings.Fields(string(data)) {
		ix.builtin[nameOfPath(line)] = true
	}
	info, err := readBounded(ix.root, ix.dir+"/modules.builtin.modinfo", maxIndexBytes)
	if err != nil && !notExist(err) {
		return err
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if mod, alias, ok := strings.Cut(string(kv), ".alias="); ok && ix.builtin[modName(mod)] {
			ix.builtin[modName(alias)] = true
		}
	}
	return nil
}

func (ix *index) readSoftdepsAndAliases() error {
	soft, err := readBounded(ix.root, ix.dir+"/modules.softdep", maxIndexBytes)
	if err != nil && !notExist(err) {
		return err
	}
	for _, line := range strings.Split(string(soft), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "softdep" {
			ix.addSoftdep(modName(f[1]), strings.Join(f[2:], " "))
		}
	}
	alias, err := readBounded(ix.root, ix.dir+"/modules.alias", maxIndexBytes)
	if err != nil && !notExist(err) {
		return err
	}
	for _, line := range strings.Split(string(alias), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" && !strings.ContainsAny(f[1], "*?[") {
			a := modName(f[1])
			ix.aliases[a] = append(ix.aliases[a], modName(f[2]))
		}
	}
	return nil
}

// addSoftdep reads "pre: a b post: c" (words before pre:/post: are
// ignored, as kmod does).
func (ix *index) addSoftdep(name, spec string) {
	var to map[string][]string
	for _, w := range strings.Fields(spec) {
		switch w {
		case "pre:":
			to = ix.pre
		case "post:":
			to = ix.post
		default:
			if to != nil {
				to[name] = append(to[name], modName(w))
			}
		}
	}
}

// walk finds the module files of an unpacked kernel; their dependencies
// are read from each module's .modinfo when needed.
func (ix *index) walk() error {
	return fs.WalkDir(ix.root.FS(), ix.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isModuleFile(p) {
			rel := strings.TrimPrefix(p, ix.dir+"/")
			if _, seen := ix.paths[nameOfPath(rel)]; !seen {
				ix.paths[nameOfPath(rel)] = rel
			}
		}
		return nil
	})
}

// modinfo reads the key=value strings of a module's .modinfo section.
func (ix *index) modinfo(name string) (map[string][]string, error) {
	data, err := readModule(ix.root, ix.dir+"/"+ix.paths[name])
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", name)
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	info := map[string][]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			info[k] = append(info[k], v)
		}
	}
	return info, nil
}

// depsOf returns a module's hard dependencies, reading its modinfo (and
// softdeps there) when depmod's index is absent.
func (ix *index) depsOf(name string) ([]string, error) {
	if d, ok := ix.deps[name]; ok {
		return d, nil
	}
	info, err := ix.modinfo(name)
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, v := range info["depends"] {
		for _, d := range strings.Split(v, ",") {
			if d != "" {
				deps = append(deps, modName(d))
			}
		}
	}
	for _, s := range info["softdep"] {
		ix.addSoftdep(name, s)
	}
	ix.deps[name] = deps
	return deps, nil
}

// scanAliases, for an unpacked kernel, reads the aliases of crypto and
// library modules: those are what softdeps and DefaultModules name by
// alias (crc32c, crypto-crc32c). Reading every module would mean
// decompressing hundreds of megabytes.
func (ix *index) scanAliases() {
	if ix.depmod || len(ix.aliases) > 0 {
		return
	}
	names := make([]string, 0, len(ix.paths))
	for n, p := range ix.paths {
		if strings.HasPrefix(p, "kernel/crypto/") || strings.HasPrefix(p, "kernel/arch/") || strings.HasPrefix(p, "kernel/lib/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		info, err := ix.modinfo(n)
		if err != nil {
			continue
		}
		for _, a := range info["alias"] {
			if !strings.ContainsAny(a, "*?[") {
				ix.aliases[modName(a)] = append(ix.aliases[modName(a)], n)
			}
		}
	}
}

// ModulesFor are the modules app mode's initramfs loads on a machine.
func ModulesFor(a disk.Arch) []string {
	if a == disk.ARM64 {
		return ARM64Modules
	}
	return DefaultModules
}
