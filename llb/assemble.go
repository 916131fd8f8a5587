// Package llb turns a bootable root filesystem into the LLB that writes its
// disk: pure functions from states and options to states, so that the same
// inputs always give the same definition and BuildKit's cache holds.
package llb

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/diskmeta"
	bk "github.com/moby/buildkit/client/llb"
)

// DiskOptions are what `c2vm assemble` gets inside the build.
type DiskOptions struct {
	// Formats are the formats to write: disk.ParseFormats' result
	// without its first entry (the raw disk always assembled); none: raw.
	Formats  []disk.Format
	Size     string // auto or N[KMGT]
	Firmware string // hybrid, bios, uefi
	// Arch is the target platform's architecture (disk.ParseArch); the
	// assembly itself runs on the builder's platform, never emulated.
	Arch    string
	Cmdline string
	// Epoch, when set, is SOURCE_DATE_EPOCH: reproducible disks.
	Epoch string
	// NoCache re-runs assembly and conversions (--no-cache).
	NoCache bool
	// Mode is system or app (disk.Mode).
	Mode string
	// ImageConfig is the image's config (JSON): the program app mode runs,
	// the ports c2vm.json records.
	ImageConfig []byte
	// Hostname is the app-mode VM's hostname.
	Hostname string
	// SecureBoot is auto, require or off (secureboot.Mode); "" is auto.
	SecureBoot string
	// Signed, when set, holds the distribution's signed shim and GRUB
	// (bootstrap's SignedBoot) under SignedDir, tried before the c2vm
	// image's own.
	Signed *bk.State
}

const (
	rootfsDir = "/rootfs"
	outDir    = "/out"
	inDir     = "/in"
	configDir = "/c2vm-config"
	// KernelDir is where the c2vm image keeps Debian's kernels for app
	// mode, one root per machine (amd64/, arm64/).
	KernelDir = "/usr/lib/c2vm/kernel"
	// SecureBootDir is where the c2vm image keeps Debian's signed shim and
	// GRUB, for app mode and for images with their own Debian kernel.
	SecureBootDir = "/usr/lib/c2vm/secureboot"
	signedDir     = "/c2vm-signed"
)

// Disk runs `c2vm assemble` from the tools image (the c2vm image itself)
// over the rootfs, mounted read-only, and returns a state that holds
// exactly the files asked for and c2vm.json, so that BuildKit exports
// nothing else. The raw disk is always assembled; each qemu-img or tar
// format is its own step from it, so progress shows them and the cache
// keeps them apart. The OVA comes from the assembly step itself: its OVF
// is written by c2vm's own code, which only `c2vm assemble` runs.
func Disk(rootfs, tools bk.State, o DiskOptions) bk.State {
	want := o.outputs()
	inAsm, conversions := split(want)
	base := assemble(rootfs, tools, o, inAsm)
	parts := []bk.State{base}
	if !slices.ContainsFunc(want, isRaw) && len(conversions) > 0 {
		// The raw disk is in the step's output for the conversions only.
		parts[0] = keep(base, inAsm)
	}
	for _, f := range conversions {
		parts = append(parts, convert(base, tools, f, o))
	}
	return bk.Merge(parts, bk.WithCustomName("collect disks"))
}

// outputs are the formats to write: those named, or raw.
func (o DiskOptions) outputs() []disk.Format {
	if len(o.Formats) == 0 {
		return disk.Outputs(nil)
	}
	return o.Formats
}

// ContainerDisk says whether the result is a KubeVirt containerDisk, whose
// image config is the minimal one.
func (o DiskOptions) ContainerDisk() bool {
	return slices.ContainsFunc(o.outputs(), func(f disk.Format) bool { return f.Name == "containerdisk" })
}

func isRaw(f disk.Format) bool { return f.Make == disk.MakeRaw }

// split sorts the outputs into those the assembly step writes (the raw
// disk, when asked for or when a conversion needs it, and the OVA) and the
// conversions.
func split(want []disk.Format) (inAsm, conversions []disk.Format) {
	for _, f := range want {
		if !f.Converted() {
			inAsm = append(inAsm, f)
		} else {
			conversions = append(conversions, f)
		}
	}
	if len(conversions) > 0 && !slices.ContainsFunc(inAsm, isRaw) {
		inAsm = append(disk.Outputs(nil), inAsm...)
	}
	return inAsm, conversions
}

// keep copies c2vm.json and the assembly's outputs other than the raw disk
// into a fresh state: what the step wrote minus the raw disk.
func keep(base bk.State, inAsm []disk.Format) bk.State {
	fa := bk.Copy(base, "/"+diskmeta.FileName, "/"+diskmeta.FileName)
	for _, f := range inAsm {
		if !isRaw(f) {
			fa = fa.Copy(base, "/"+f.FileName(), "/"+f.FileName())
		}
	}
	return bk.Scratch().File(fa, bk.WithCustomName("keep "+diskmeta.FileName+" without the raw disk"))
}

// assemble is the `c2vm assemble` step writing formats into /out.
func assemble(rootfs, tools bk.State, o DiskOptions, formats []disk.Format) bk.State {
	args := []string{"c2vm", "assemble", "--quiet", "-o", outDir}
	if len(formats) != 1 || !isRaw(formats[0]) {
		var names []string
		for _, f := range formats {
			names = append(names, f.Name)
		}
		args = append(args, "--format", strings.Join(names, ","))
	}
	if o.Size != "" {
		args = append(args, "--size", o.Size)
	}
	if o.Firmware != "" {
		args = append(args, "--firmware", o.Firmware)
	}
	if o.Arch != "" && o.Arch != "amd64" {
		// Only when not amd64: amd64 definitions, and so their cache,
		// stay as they were.
		args = append(args, "--arch", o.Arch)
	}
	if o.Cmdline != "" {
		args = append(args, "--cmdline", o.Cmdline)
	}
	if o.Mode != "" {
		args = append(args, "--mode", o.Mode)
	}
	if o.Mode == "app" {
		// The c2vm image's kernel (Dockerfile): image ENV does not reach
		// an LLB exec.
		args = append(args, "--kernel-dir", KernelDir)
		if o.Hostname != "" {
			args = append(args, "--hostname", o.Hostname)
		}
	}
	var mounts []bk.RunOption
	if o.SecureBoot != "" {
		args = append(args, "--secure-boot", o.SecureBoot)
	}
	if o.SecureBoot != "off" {
		if o.Signed != nil {
			mounts = append(mounts, bk.AddMount(signedDir, *o.Signed, bk.Readonly))
			args = append(args, "--secure-boot-dir", signedDir)
		}
		// Image ENV does not reach an LLB exec: named here.
		args = append(args, "--secure-boot-dir", SecureBootDir)
	}
	if o.ImageConfig != nil {
		// A file, not an argument: the config is image input.
		cfg := bk.Scratch().File(bk.Mkfile("/config.json", 0o644, o.ImageConfig), bk.WithCustomName("image config"))
		mounts = append(mounts, bk.AddMount(configDir, cfg, bk.Readonly))
		args = append(args, "--image-config", configDir+"/config.json")
	}
	args = append(args, rootfsDir)
	run := append([]bk.RunOption{
		bk.Args(args),
		bk.AddMount(rootfsDir, rootfs, bk.Readonly),
		bk.Network(bk.NetModeNone),
		bk.WithCustomName("assemble disk"),
	}, mounts...)
	if o.Epoch != "" {
		run = append(run, bk.AddEnv("SOURCE_DATE_EPOCH", o.Epoch))
	}
	if o.NoCache {
		run = append(run, bk.IgnoreCache)
	}
	return tools.Run(run...).AddMount(outDir, bk.Scratch())
}

// convert makes format f from the raw disk in its own step. A file with an
// owner (containerdisk's, for KubeVirt's QEMU) is written by that user into
// a directory it owns: no root-owned copy, no second copy to chown.
func convert(raw, tools bk.State, f disk.Format, o DiskOptions) bk.State {
	minVirtual := int64(0)
	if o.Size == "" || o.Size == "auto" {
		minVirtual = disk.MinVirtualSize
	}
	run := []bk.RunOption{
		bk.Args([]string{"c2vm", "convert", "--format", f.Name, "--min-virtual-size", strconv.FormatInt(minVirtual, 10),
			inDir + "/linux.img", outDir + "/" + f.FileName()}),
		bk.AddMount(inDir, raw, bk.Readonly),
		bk.Network(bk.NetModeNone),
		bk.WithCustomNamef("convert to %s", f.Name),
	}
	if o.Epoch != "" {
		// A VHD's footer holds a time stamp.
		run = append(run, bk.AddEnv("SOURCE_DATE_EPOCH", o.Epoch))
	}
	out := bk.Scratch()
	if d := f.Dir(); d != "" {
		var own []bk.MkdirOption
		if f.Owner != 0 {
			own = append(own, bk.WithUIDGID(f.Owner, f.Owner))
			run = append(run, bk.User(fmt.Sprintf("%d:%d", f.Owner, f.Owner)))
		}
		out = out.File(bk.Mkdir("/"+d, 0o755, own...), bk.WithCustomNamef("make /%s", d))
	}
	if o.NoCache {
		run = append(run, bk.IgnoreCache)
	}
	return tools.Run(run...).AddMount(outDir, out)
}
