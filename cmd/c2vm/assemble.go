package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func assembleCmd() *cobra.Command {
	var out, format, size, firmware, cmdline, mode, arch string
	var prog programFlags
	var access accessFlags
	var quiet bool
	var sb secureBootFlags
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
ENTRYPOINT and CMD, or --entrypoint/--cmd). --ssh-authorized-keys and
--root-password-file give root a way in. No root, loop device or mount is
needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := assembleOptions(out, format, size, firmware, cmdline, mode)
			if err != nil {
				return err
			}

			if opts.Access, err = access.read(); err != nil {
				return err
			}
			if err := sb.apply(cmd, &opts); err != nil {
				return err
			}
			src, err := openSource(args[0], arch, &opts)
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
	f.StringVar(&format, "format", "raw", "comma-separated output formats, exactly those written: "+strings.Join(disk.FormatNames(), ",")+" (raw is linux.img; qcow2 is zstd-compressed)")
	f.StringVar(&size, "size", "auto", "disk size: auto (content plus headroom) or N[K|M|G|T]")
	f.StringVar(&firmware, "firmware", "hybrid", "boot firmware the disk supports: hybrid, bios or uefi (arm64: uefi only; hybrid means uefi there)")
	f.StringVar(&arch, "arch", "auto", "the machine the disk boots on: amd64 or arm64 (its GRUB, console, root partition type, and in app mode c2vm's kernel and init); auto: the image config's architecture for an image source, else amd64")
	f.StringVar(&cmdline, "cmdline", "", "extra kernel command line arguments")
	f.StringVar(&mode, "mode", "auto", "auto, system (the tree's own kernel and init) or app (c2vm's kernel and init run the image's program)")
	prog.register(f)
	access.register(f)
	sb.register(f)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the written files")
	return cmd
}

// openSource opens the source for the machine --arch names, or, for
// auto, finds the machine in the image's config (amd64 for a tree or a
// tar, which have none).
func openSource(spec, arch string, opts *exporter.Options) (rootfs.Source, error) {
	if arch != "auto" {
		a, err := disk.ParseArch(arch)
		if err != nil {
			return nil, err
		}
		opts.Arch = a
		return rootfs.OpenFor(spec, string(a))
	}
	src, err := rootfs.Open(spec)
	if err != nil {
		return nil, err
	}
	opts.Arch = disk.AMD64
	if a := src.Architecture(); a != "" {
		if opts.Arch, err = disk.ParseArch(a); err != nil {
			src.Close()
			return nil, usererr.New(fmt.Sprintf("%s is an image for %s, and c2vm makes disks for amd64 and arm64", spec, a), "give an amd64 or arm64 image")
		}
	}
	return src, nil
}

// assembleOptions parses the flags every assembly has.
func assembleOptions(out, format, size, firmware, cmdline, mode string) (exporter.Options, error) {
	var o exporter.Options
	var err error
	if o.Formats, err = disk.ParseFormats(format); err != nil {
		return o, err
	}
	if o.Firmware, err = disk.ParseFirmware(firmware); err != nil {
		return o, err
	}
	if o.Size, err = disk.ParseSize(size); err != nil {
		return o, err
	}
	if o.Cmdline, err = disk.ParseCmdline(cmdline); err != nil {
		return o, err
	}
	if o.Mode, err = disk.ParseMode(mode); err != nil {
		return o, err
	}
	o.OutDir = out
	return o, nil
}

// accessFlags give root of an assembled disk a way in: SSH keys (key only)
// and a password hash, written into the filesystem as it is streamed.
type accessFlags struct{ keysFile, passwordFile string }

func (a *accessFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.keysFile, "ssh-authorized-keys", "", "a file of OpenSSH public keys for root's ~/.ssh/authorized_keys (root logs in with a key only; the tree needs openssh-server)")
	f.StringVar(&a.passwordFile, "root-password-file", "", "a file holding a crypt(3) hash for root (mkpasswd -m yescrypt); root is left as the tree has it otherwise")
}

// read checks both files before any work: a bad line or hash is one
// error, and no disk is written.
func (a *accessFlags) read() (*exporter.Access, error) {
	if a.keysFile == "" && a.passwordFile == "" {
		return nil, nil
	}
	var acc exporter.Access
	if a.keysFile != "" {
		b, err := readLimited("--ssh-authorized-keys", a.keysFile, accounts.MaxKeysBytes)
		if err != nil {
			return nil, err
		}
		if acc.AuthorizedKeys, err = accounts.ParseAuthorizedKeys(b); err != nil {
			return nil, usererr.New(fmt.Sprintf("--ssh-authorized-keys %s: %v", a.keysFile, err), accounts.KeysFix)
		}
	}
	if a.passwordFile != "" {
		b, err := readLimited("--root-password-file", a.passwordFile, 4096)
		if err != nil {
			return nil, err
		}
		acc.RootPasswordHash = strings.TrimSpace(string(b))
		if err := accounts.CheckHash(acc.RootPasswordHash); err != nil {
			return nil, usererr.New(fmt.Sprintf("--root-password-file %s: %v", a.passwordFile, err), "put one crypt(3) hash in the file, such as mkpasswd -m yescrypt prints")
		}
	}
	return &acc, nil
}

func readLimited(flag, name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: %v", flag, err), "give a readable file")
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s %s: %v", flag, name, err), "give a readable file")
	}
	if int64(len(b)) > max {
		return nil, usererr.New(fmt.Sprintf("%s %s is larger than %d bytes", flag, name, max), "give the file itself, not something else")
	}
	return b, nil
}
