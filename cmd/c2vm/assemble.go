package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/spf13/cobra"
)

func assembleCmd() *cobra.Command {
	var out, format, size, firmware, cmdline, mode string
	var prog programFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "assemble [flags] SOURCE",
		Short: "Build a bootable disk from a root filesystem or an image",
		Long: `Build a bootable BIOS+UEFI disk (DIR/linux.img, with DIR/c2vm.json for
c2vm run) from a root filesystem. SOURCE is one of:
  DIR                       a root filesystem tree
  FILE.tar                  a rootfs tar (docker export), plain, gzip or zstd
  oci-layout:DIR[:TAG]      an OCI image layout
  docker-archive:FILE[:REF] docker save output
A tree with its own kernel, initramfs and init boots as a system; any other
runs in app mode: c2vm's kernel and init run the image's program (its
ENTRYPOINT and CMD, or --entrypoint/--cmd). No root, loop device or mount
is needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := assembleOptions(out, format, size, firmware, cmdline, mode)
			if err != nil {
				return err
			}
			src, err := rootfs.Open(args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			if opts.Program, opts.Exposed, err = prog.config(src.ImageConfig()); err != nil {
				return err
			}
			opts.KernelDir = prog.kernelDir
			if !quiet {
				opts.Log = os.Stderr
			}
			// Memory stays near what is live, not twice it (GOGC's default),
			// so that peak RSS holds within 150 MiB; GOMEMLIMIT overrides.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(100 << 20)
			}
			res, err := exporter.Assemble(cmd.Context(), src, opts)
			if err != nil {
				return err
			}
			for _, f := range res.Files {
				fmt.Println(f)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", ".", "output directory; the disk is written as DIR/linux.img")
	f.StringVar(&format, "format", "raw", "comma-separated output formats: raw,qcow2,vmdk,vhdx,vdi,vhd (raw is always written)")
	f.StringVar(&size, "size", "auto", "disk size: auto (content plus headroom) or N[K|M|G|T]")
	f.StringVar(&firmware, "firmware", "hybrid", "boot firmware the disk supports: hybrid, bios or uefi")
	f.StringVar(&cmdline, "cmdline", "", "extra kernel command line arguments")
	f.StringVar(&mode, "mode", "auto", "auto, system (the tree's own kernel and init) or app (c2vm's kernel and init run the image's program)")
	prog.register(f)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the written files")
	return cmd
}

// assembleOptions parses the flags every assembly has.
func assembleOptions(out, format, size, firmware, cmdline, mode string) (exporter.Options, error) {
	var o exporter.Options
	var err error
	if o.Formats, err = exporter.ParseFormats(format); err != nil {
		return o, err
	}
	if o.Firmware, err = exporter.ParseFirmware(firmware); err != nil {
		return o, err
	}
	if o.Size, err = exporter.ParseSize(size); err != nil {
		return o, err
	}
	if o.Cmdline, err = exporter.ParseCmdline(cmdline); err != nil {
		return o, err
	}
	if o.Mode, err = exporter.ParseMode(mode); err != nil {
		return o, err
	}
	o.OutDir = out
	return o, nil
}
