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
		"gzio", "sleep", "all_video", "keystatus", "regexp", "loadenv"},
	"x86_64-efi": {"part_gpt", "part_msdos", "ext2", "fat", "search", "search_fs_uuid", "configfile",
		"normal", "linux", "echo", "serial", "terminal", "test", "boot", "memdisk", "tar", "gzio", "sleep",
		"efi_gop", "efi_uga", "all_video", "keystatus", "regexp", "loadenv"},
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

// grubConfig is a disk's grub.cfg. Every path and argument c2vm writes
// is quoted for GRUB's script language; cmdline comes from ParseCmdline.
//
// A system disk (follow) decides what to boot at each boot, from what the
// guest holds then: the distribution's kernel links (Debian's /vmlinuz and
// /initrd.img, Ubuntu's in /boot), else the newest /boot/vmlinuz-VERSION
// with an initramfs (grubFollowScript). So a kernel installed or
// removed inside the guest needs no boot loader update. The menu also
// offers the previous kernel (the .old links). An app disk boots c2vm's
// kernel, bf.Kernel.
//
// The guest's /etc/c2vm/boot.env, a GRUB environment block, may add words
// to the command line (c2vm_cmdline) and show the menu for some seconds
// (c2vm_menu); load_env takes only those two names from it.
//
// The script boots straight away and never enters GRUB's menu: the menu
// machinery, even hidden with timeout=0, redraws the firmware's console,
// which cost about 3 s of every UEFI boot under emulation (GRUB 2.12 and
// OVMF, docs/fast-loop.md). The menu appears when Shift is held as GRUB
// starts, when boot.env asks for it, or after the kernel or initramfs
// could not be loaded (the error stays on screen for 10 s first). The
// menu's entries hold the linux and initrd commands themselves, so the
// command line can be edited there.
//
// Under BIOS GRUB starts the kernel through its 16-bit entry (linux16), as
// QEMU's -kernel does: under emulation the kernel printed its first line
// 2–5 s sooner than through the 32-bit entry (linux), which UEFI uses.
func grubConfig(platform, rootUUID string, bf rootfs.BootFiles, cmdline []string, follow bool) string {
	args := append([]string{"root=UUID=" + rootUUID, "rw", "console=tty0", "console=ttyS0,115200"}, cmdline...)
	for i, a := range args {
		args[i] = grubQuote(a)
	}
	linux, initrd := "linux", "initrd"
	if platform == "i386-pc" {
		linux, initrd = "linux16", "initrd16"
	}
	load := fmt.Sprintf("\t%s \"$c2vm_k\" %s $c2vm_cmdline\n\t%s \"$c2vm_i\"\n", linux, strings.Join(args, " "), initrd)
	var b strings.Builder
	fmt.Fprintf(&b, grubEnvScript, grubQuote(rootUUID), grubQuote(bootEnvPath))
	if follow {
		built := ""
		if bf.Kernel != "" {
			built = "/" + bf.Kernel
		}
		fmt.Fprintf(&b, "set c2vm_built=%s\n", grubQuote(built))
		b.WriteString(grubFollowScript)
	} else {
		fmt.Fprintf(&b, "function c2vm_pick {\n\tset c2vm_k=%s\n\tset c2vm_i=%s\n}\n", grubQuote("/"+bf.Kernel), grubQuote("/"+bf.Initrd))
	}
	fmt.Fprintf(&b, grubMainScript, indent(load))
	fmt.Fprintf(&b, "menuentry 'Linux (c2vm)' {\n\tc2vm_pick\n%s}\n", load)
	if follow {
		fmt.Fprintf(&b, "menuentry 'Linux, previous kernel (c2vm)' {\n\tc2vm_pick_old\n%s}\n", load)
	}
	return b.String()
}

// bootEnvPath is the guest's file of boot settings, a GRUB environment
// block on the root filesystem.
const bootEnvPath = "/etc/c2vm/boot.env"

// grubEnvScript finds the root and reads the guest's boot settings.
const grubEnvScript = `search --no-floppy --fs-uuid --set=root %s
set c2vm_cmdline=
set c2vm_menu=
if [ -f %[2]s ]; then
	load_env --skip-sig --file %[2]s c2vm_cmdline c2vm_menu
fi
`

// grubFollowScript picks a system disk's kernel at boot: c2vm_pick and
// c2vm_pick_old set c2vm_k and c2vm_i, or fail. c2vm_newer prefers the
// kernel modified last; between equal times (SOURCE_DATE_EPOCH gives every
// file of the image one) the kernel newest by version at assembly,
// c2vm_built, then the greater name. Loop variables differ between
// functions because GRUB's variables are all global.
const grubFollowScript = `function c2vm_newer {
	if [ "$1" -nt "$2" ]; then
		[ -n x ]
	elif [ "$2" -nt "$1" ]; then
		[ -n "" ]
	elif [ "$2" = "$c2vm_built" ]; then
		[ -n "" ]
	elif [ "$1" = "$c2vm_built" ]; then
		[ -n x ]
	else
		[ "$1" '>' "$2" ]
	fi
}
function c2vm_initrd {
	set c2vm_i=
	for c2vm_n in "/boot/initrd.img-$1" "/boot/initrd-$1.img" "/boot/initramfs-$1.img" "/boot/initrd-$1"; do
		if [ -z "$c2vm_i" -a -f "$c2vm_n" ]; then
			set c2vm_i="$c2vm_n"
		fi
	done
	[ -n "$c2vm_i" ]
}
function c2vm_newest {
	set c2vm_k=
	set c2vm_ki=
	for c2vm_f in /boot/vmlinuz-*; do
		if regexp --set=1:c2vm_v '^/boot/vmlinuz-(.+)$' "$c2vm_f"; then
			if [ -f "$c2vm_f" ]; then
				if c2vm_initrd "$c2vm_v"; then
					if [ -z "$c2vm_k" ]; then
						set c2vm_k="$c2vm_f"
						set c2vm_ki="$c2vm_i"
					elif c2vm_newer "$c2vm_f" "$c2vm_k"; then
						set c2vm_k="$c2vm_f"
						set c2vm_ki="$c2vm_i"
					fi
				fi
			fi
		fi
	done
	set c2vm_i="$c2vm_ki"
	[ -n "$c2vm_k" ]
}
function c2vm_pick {
	if [ -f /vmlinuz -a -f /initrd.img ]; then
		set c2vm_k=/vmlinuz
		set c2vm_i=/initrd.img
	elif [ -f /boot/vmlinuz -a -f /boot/initrd.img ]; then
		set c2vm_k=/boot/vmlinuz
		set c2vm_i=/boot/initrd.img
	else
		c2vm_newest
	fi
}
function c2vm_pick_old {
	if [ -f /vmlinuz.old -a -f /initrd.img.old ]; then
		set c2vm_k=/vmlinuz.old
		set c2vm_i=/initrd.img.old
	elif [ -f /boot/vmlinuz.old -a -f /boot/initrd.img.old ]; then
		set c2vm_k=/boot/vmlinuz.old
		set c2vm_i=/boot/initrd.img.old
	else
		[ -n "" ]
	fi
}
`

// grubMainScript boots at once, or shows the menu.
const grubMainScript = `function c2vm_load {
	if c2vm_pick; then
%s	else
		echo 'c2vm: no kernel with an initramfs was found on the root filesystem'
		[ -n "" ]
	fi
}
if keystatus --shift; then
	set timeout_style=menu
	set timeout=-1
elif [ -n "$c2vm_menu" ]; then
	set timeout_style=menu
	set timeout="$c2vm_menu"
else
	if c2vm_load; then
		boot
	fi
	echo 'c2vm: the kernel could not be loaded or started (see above); GRUB menu in 10 s'
	sleep --interruptible 10
	set timeout_style=menu
	set timeout=-1
fi
`

// indent adds a tab before every line of s.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "")
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
