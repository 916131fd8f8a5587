package main

import (
	"fmt"
	"os"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/spf13/cobra"
)

func assembleCmd() *cobra.Command {
	var out, format, size, firmware, cmdline string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "assemble [flags] SOURCE",
		Short: "Build a bootable disk from a root filesystem",
		Long: `Build a bootable BIOS+UEFI disk (DIR/linux.img) from a root filesystem that
holds a kernel and an initramfs. SOURCE is one of:
  DIR                       a root filesystem tree
  FILE.tar                  a rootfs tar (docker export), plain or gzip
  oci-layout:DIR[:TAG]      an OCI image layout
  docker-archive:FILE[:REF] docker save output
No root, loop device or mount is needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			formats, err := exporter.ParseFormats(format)
			if err != nil {
				return err
			}
			fw, err := exporter.ParseFirmware(firmware)
			if err != nil {
				return err
			}
			sz, err := exporter.ParseSize(size)
			if err != nil {
				return err
			}
			cl, err := exporter.ParseCmdline(cmdline)
			if err != nil {
				return err
			}
			src, err := rootfs.Open(args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			opts := exporter.Options{OutDir: out, Formats: formats, Size: sz, Firmware: fw, Cmdline: cl}
			if !quiet {
				opts.Log = os.Stderr
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
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the written files")
	return cmd
}
