package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/c2vm/c2vm/exporter/rootfs"
)

// GRUB's images are the same for every disk. Each carries in its memdisk
// only grubStub, a script that sets up the consoles and reads the disk's
// own grub.cfg: under BIOS from the end of the BIOS boot partition (raw
// sectors, as GRUB reads a blocklist), under UEFI from the ESP, next to the
// image. A disk's grub.cfg names its root filesystem's UUID, known only once
// the root is written; keeping it out of the images lets them be made once
// per GRUB installation and cached (grubcache.go), where making the BIOS
// image (LZMA) took 0.15 s of every assembly.

var grubModules = map[string][]string{
	"i386-pc": {"biosdisk", "part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid",
		"configfile", "normal", "linux16", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar",
		"gzio", "sleep", "all_video", "keystatus", "regexp"},
	"x86_64-efi": {"part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
		"normal", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar", "gzio", "sleep",
		"efi_gop", "efi_uga", "all_video", "keystatus"},
}

// Where a BIOS disk keeps its grub.cfg: the last 64 KiB of the BIOS boot
// partition, padded with newlines; core.img must end before it.
const (
	biosCfgOffset  = biosBootSize - biosCfgSize // within the BIOS boot partition
	biosCfgSize    = 64 << 10
	biosCfgSectors = biosCfgSize / sectorSize
)

// grubStub is the script in a platform's image. Under BIOS it reads the
// disk GRUB was started from: GRUB 2.06 names it in $cmdpath ("(hd0)"; the
// regexp keeps its name whatever follows it), GRUB 2.12 leaves $cmdpath
// empty there, and then it is hd0, the drive a BIOS boots from (it maps
// the disk it boots to 0x80). Under UEFI $cmdpath is the directory of the
// image on the ESP. Any failure leaves GRUB's command line on the console,
// with the error above.
func grubStub(platform string) string {
	head := "serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n"
	if platform == "i386-pc" {
		return fmt.Sprintf("%sset c2vm_disk=hd0\nregexp --set=1:c2vm_disk '^\\(([^,)]+)' \"$cmdpath\"\nsource \"($c2vm_disk,gpt1)%d+%d\"\n",
			head, biosCfgOffset/sectorSize, biosCfgSectors)
	}
	return head + "source \"$cmdpath/grub.cfg\"\n"
}

// grubConfig boots the distro's stable kernel symlinks when they exist, so a
// kernel upgraded inside the guest boots next time, and otherwise the newest
// versioned kernel found at assembly. Every path and argument is quoted for
// GRUB's script language; cmdline comes from ParseCmdline, paths from
// FindBoot (validated names) or from c2vm itself.
//
// The script boots straight away and never enters GRUB's menu: the menu
// machinery, even hidden with timeout=0, redraws the firmware's console,
// which cost about 3 s of every UEFI boot under emulation (GRUB 2.12 and
// OVMF, docs/fast-loop.md). The menu appears when Shift is held as GRUB
// starts, or after the kernel or initramfs could not be loaded (the error
// stays on screen for 10 s first), so the command line can be edited on
// the VM's screen: the menu entry holds the linux and initrd commands
// themselves, not a call.
//
// Under BIOS GRUB starts the kernel through its 16-bit entry (linux16), as
// QEMU's -kernel does: under emulation the kernel printed its first line
// 2–5 s sooner than through the 32-bit entry (linux), which UEFI uses.
// c2vm left linux16 for a day after BIOS guests started that way crashed;
// the crashes came under both entries and were most likely QEMU 7.2's
// multi-threaded TCG, which c2vm run no longer uses (docs/fast-loop.md).
func grubConfig(platform, rootUUID string, bf rootfs.BootFiles, cmdline []string) string {
	args := append([]string{"root=UUID=" + rootUUID, "rw", "console=tty0", "console=ttyS0,115200"}, cmdline...)
	for i, a := range args {
		args[i] = grubQuote(a)
	}
	load := grubLoad(bf, strings.Join(args, " "), platform == "i386-pc")
	return fmt.Sprintf(`search --no-floppy --fs-uuid --set=root %s
function c2vm_load {
%s}
if keystatus --shift; then
	set timeout_style=menu
	set timeout=-1
else
	if c2vm_load; then
		boot
	fi
	echo 'c2vm: the kernel could not be loaded or started (see above); GRUB menu in 10 s'
	sleep --interruptible 10
	set timeout_style=menu
	set timeout=-1
fi
menuentry "Linux (c2vm)" {
%s}
`, grubQuote(rootUUID), load, load)
}

// grubLoad is the script that loads the kernel and initramfs: the stable
// links when both exist, else the versioned files found at assembly. Its
// status is the last command's, so a missing initramfs fails it too.
func grubLoad(bf rootfs.BootFiles, kargs string, entry16 bool) string {
	linux, initrd := "linux", "initrd"
	if entry16 {
		linux, initrd = "linux16", "initrd16"
	}
	var b strings.Builder
	kw := "if"
	for _, p := range bf.Stable {
		k, i := grubQuote("/"+p[0]), grubQuote("/"+p[1])
		fmt.Fprintf(&b, "\t%s [ -e %s -a -e %s ]; then\n\t\t%s %s %s\n\t\t%s %s\n", kw, k, i, linux, k, kargs, initrd, i)
		kw = "elif"
	}
	if bf.Kernel != "" {
		if kw == "elif" {
			b.WriteString("\telse\n")
		}
		fmt.Fprintf(&b, "\t\t%s %s %s\n\t\t%s %s\n", linux, grubQuote("/"+bf.Kernel), kargs, initrd, grubQuote("/"+bf.Initrd))
	}
	if kw == "elif" {
		b.WriteString("\tfi\n")
	}
	return b.String()
}

// memdiskTar packs a platform's grubStub as GRUB's memdisk, with fixed
// times.
func memdiskTar(stub string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []string{"boot/", "boot/grub/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "boot/grub/grub.cfg", Mode: 0o644, Size: int64(len(stub)), ModTime: epoch}); err != nil {
		return nil, err
	}
	tw.Write([]byte(stub))
	err := tw.Close()
	return buf.Bytes(), err
}

// makeGrubImage runs grub-mkimage for a platform in dir, a scratch
// directory, and returns the image.
func makeGrubImage(ctx context.Context, dir, grubLib, platform string) ([]byte, error) {
	memdisk, err := memdiskTar(grubStub(platform))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "memdisk-"+platform+".tar"), memdisk, 0o644); err != nil {
		return nil, err
	}
	if err := runIn(ctx, dir, nil, nil, "grub-mkimage", append([]string{"-d", grubLib}, mkimageArgs(platform)...)...); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, platform+".img"))
}

// mkimageArgs are grub-mkimage's arguments but the module directory: the
// output and the memdisk, named relative to the scratch directory, and the
// modules.
func mkimageArgs(platform string) []string {
	return append([]string{"-O", platform, "-o", platform + ".img", "-p", "(memdisk)/boot/grub", "-m", "memdisk-" + platform + ".tar"}, grubModules[platform]...)
}

// biosConfig is a disk's grub.cfg as the BIOS stub reads it: padded with
// newlines to its area.
func biosConfig(cfg string) ([]byte, error) {
	if len(cfg) >= biosCfgSize {
		return nil, fmt.Errorf("grub.cfg is %d bytes, more than the %d the BIOS boot partition keeps for it", len(cfg), biosCfgSize-1)
	}
	b := bytes.Repeat([]byte{'\n'}, biosCfgSize)
	copy(b, cfg)
	return b, nil
}

// installBIOS writes core.img and the disk's grub.cfg into the BIOS boot
// partition and GRUB's boot.img into the MBR, patched with where core.img
// sits, as grub-install would on a real disk.
func installBIOS(img *os.File, l *Layout, core []byte, cfg string) error {
	dir, err := grubDir("i386-pc")
	if err != nil {
		return err
	}
	boot, err := os.ReadFile(filepath.Join(dir, "boot.img"))
	if err != nil || len(boot) != 512 {
		return fmt.Errorf("reading GRUB's boot.img: %v", err)
	}
	if l.BIOSBoot.Size != biosBootSize || l.BIOSBoot.Num != 1 {
		return fmt.Errorf("the BIOS boot partition is number %d of %d bytes: GRUB's stub reads partition 1 of %d", l.BIOSBoot.Num, l.BIOSBoot.Size, biosBootSize)
	}
	if err := checkGrubImage("i386-pc", core); err != nil {
		return err
	}
	bc, err := biosConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := img.WriteAt(bc, l.BIOSBoot.Start+biosCfgOffset); err != nil {
		return err
	}
	coreLBA := uint64(l.BIOSBoot.Start / sectorSize)
	core = append([]byte{}, core...)
	// diskboot.img's first blocklist: the rest of core.img starts one sector on.
	binary.LittleEndian.PutUint64(core[500:], coreLBA+1)
	if _, err := img.WriteAt(core, l.BIOSBoot.Start); err != nil {
		return err
	}
	// boot.img's code up to the disk signature, keeping sfdisk's protective
	// MBR partition table; then the LBA of core.img at 0x5c.
	mbr := make([]byte, 440)
	copy(mbr, boot[:440])
	binary.LittleEndian.PutUint64(mbr[0x5c:], coreLBA)
	_, err = img.WriteAt(mbr, 0)
	return err
}
