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
}

const (
	rootfsDir = "/rootfs"
	outDir    = "/out"
	inDir     = "/in"
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
	args = append(args, rootfsDir)
	run := []bk.RunOption{
		bk.Args(args),
		bk.AddMount(rootfsDir, rootfs, bk.Readonly),
		bk.Network(bk.NetModeNone),
		bk.WithCustomName("assemble disk"),
	}
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
