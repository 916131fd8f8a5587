// Package llb turns a bootable root filesystem into the LLB that writes its
// disk: pure functions from states and options to states, so that the same
// inputs always give the same definition and BuildKit's cache holds.
package llb

import (
	"github.com/c2vm/c2vm/exporter"
	bk "github.com/moby/buildkit/client/llb"
)

// DiskOptions are what `c2vm assemble` gets inside the build.
type DiskOptions struct {
	Formats  []exporter.Format // from exporter.ParseFormats; raw is always made
	Size     string            // auto or N[KMGT]
	Firmware string            // hybrid, bios, uefi
	Cmdline  string
	// Epoch, when set, is SOURCE_DATE_EPOCH: reproducible disks.
	Epoch string
	// NoCache re-runs assembly and conversions (--no-cache).
	NoCache bool
	// Mode is system or app (exporter.Mode).
	Mode string
	// ImageConfig is the image's config (JSON): the program app mode runs,
	// the ports c2vm.json records.
	ImageConfig []byte
	// Hostname is the app-mode VM's hostname.
	Hostname string
}

const (
	rootfsDir = "/rootfs"
	outDir    = "/out"
	inDir     = "/in"
	configDir = "/c2vm-config"
)

// Disk runs `c2vm assemble` from the tools image (the c2vm image itself)
// over the rootfs, mounted read-only, and returns a state that holds only
// the disk files. Each extra format is its own step converting from the raw
// disk, so progress shows them and the cache keeps them apart.
func Disk(rootfs, tools bk.State, o DiskOptions) bk.State {
	args := []string{"c2vm", "assemble", "--quiet", "-o", outDir}
	if o.Size != "" {
		args = append(args, "--size", o.Size)
	}
	if o.Firmware != "" {
		args = append(args, "--firmware", o.Firmware)
	}
	if o.Cmdline != "" {
		args = append(args, "--cmdline", o.Cmdline)
	}
	if o.Mode != "" {
		args = append(args, "--mode", o.Mode)
	}
	if o.Hostname != "" && o.Mode == "app" {
		args = append(args, "--hostname", o.Hostname)
	}
	var mounts []bk.RunOption
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
	raw := tools.Run(run...).AddMount(outDir, bk.Scratch())

	outs := []bk.State{raw}
	for _, f := range o.Formats {
		if f.Name != "raw" {
			outs = append(outs, convert(raw, tools, f, o.NoCache))
		}
	}
	if len(outs) == 1 {
		return raw
	}
	return bk.Merge(outs, bk.WithCustomName("collect disks"))
}

func convert(raw, tools bk.State, f exporter.Format, noCache bool) bk.State {
	run := []bk.RunOption{
		bk.Args(append([]string{"qemu-img"}, f.ConvertArgs(inDir+"/linux.img", outDir+"/"+f.FileName())...)),
		bk.AddMount(inDir, raw, bk.Readonly),
		bk.Network(bk.NetModeNone),
		bk.WithCustomNamef("convert to %s", f.Name),
	}
	if noCache {
		run = append(run, bk.IgnoreCache)
	}
	return tools.Run(run...).AddMount(outDir, bk.Scratch())
}
