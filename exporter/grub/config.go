package grub

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/exporter/rootfs"
)

// Config is what a disk's grub.cfg says: the root filesystem's UUID, the
// kernel found at assembly, c2vm's kernel arguments (from
// [disk.ParseCmdline] and c2vm's own), and whether GRUB follows the
// distribution's kernel links at each boot (system disks) or boots the
// files named (app disks).
type Config struct {
	RootUUID string
	Boot     rootfs.BootFiles
	Cmdline  []string
	Follow   bool
}

// Script is a disk's grub.cfg for platform p. Every path and argument c2vm writes
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
func (c Config) Script(p Platform) string {
	bf, follow := c.Boot, c.Follow
	args := append(append([]string{"root=UUID=" + c.RootUUID, "rw"}, p.arch().Consoles()...), c.Cmdline...)
	for i, a := range args {
		args[i] = Quote(a)
	}
	linux, initrd := "linux", "initrd"
	if p == PC {
		linux, initrd = "linux16", "initrd16"
	}
	load := fmt.Sprintf("\t%s \"$c2vm_k\" %s $c2vm_cmdline\n\t%s \"$c2vm_i\"\n", linux, strings.Join(args, " "), initrd)
	var b strings.Builder
	fmt.Fprintf(&b, grubEnvScript, Quote(c.RootUUID), Quote(BootEnvPath))
	if follow {
		built := ""
		if bf.Kernel != "" {
			built = "/" + bf.Kernel
		}
		fmt.Fprintf(&b, "set c2vm_built=%s\n", Quote(built))
		b.WriteString(grubFollowScript)
	} else {
		fmt.Fprintf(&b, "function c2vm_pick {\n\tset c2vm_k=%s\n\tset c2vm_i=%s\n}\n", Quote("/"+bf.Kernel), Quote("/"+bf.Initrd))
	}
	fmt.Fprintf(&b, grubMainScript, indent(load))
	fmt.Fprintf(&b, "menuentry 'Linux (c2vm)' {\n\tc2vm_pick\n%s}\n", load)
	if follow {
		fmt.Fprintf(&b, "menuentry 'Linux, previous kernel (c2vm)' {\n\tc2vm_pick_old\n%s}\n", load)
	}
	return b.String()
}

// BootEnvPath is the guest's file of boot settings, a GRUB environment
// block on the root filesystem.
const BootEnvPath = "/etc/c2vm/boot.env"

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

// Quote quotes a word for GRUB's script language. Inside single quotes
// nothing is special but the single quote itself, which is written as the
// four characters '\”.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
