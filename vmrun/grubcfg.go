package vmrun

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// What the direct kernel boot takes from a disk's grub.cfg, as c2vm's
// assembly writes it (exporter/grub.go, grubConfig): the root
// filesystem's UUID, which kernel and initramfs an app disk boots, and
// the command line. Only c2vm's own lines are understood; a grub.cfg that
// says anything else in their place is not read as c2vm's.

// grubBoot is what a disk's grub.cfg says.
type grubBoot struct {
	rootUUID       string   // the filesystem GRUB searches for
	app            bool     // c2vm_pick names app mode's kernel and initramfs
	kernel, initrd string   // what an app disk boots
	args           []string // the linux line's words before $c2vm_cmdline
}

// App mode's boot files, the only ones an app disk's grub.cfg may name.
const (
	appKernel = "/.c2vm/vmlinuz"
	appInitrd = "/.c2vm/initrd.img"
)

// Where a BIOS disk keeps its grub.cfg (exporter/grub.go): 64 KiB at 960
// KiB into partition 1, the BIOS boot partition of 1 MiB, padded with
// newlines.
const (
	biosBootBytes = 1 << 20
	grubCfgBytes  = 64 << 10
	grubCfgOffset = biosBootBytes - grubCfgBytes
)

// maxCmdline is x86's COMMAND_LINE_SIZE less its NUL.
const maxCmdline = 2047

// parseGrubCfg reads c2vm's grub.cfg.
func parseGrubCfg(cfg []byte) (*grubBoot, error) {
	g := &grubBoot{}
	var pickK, pickI string
	linux := false
	system := false
	for _, l := range strings.Split(string(cfg), "\n") {
		switch {
		case g.rootUUID == "" && strings.HasPrefix(l, "search --no-floppy --fs-uuid --set=root "):
			w, err := grubWords(strings.TrimPrefix(l, "search --no-floppy --fs-uuid --set=root "))
			if err != nil || len(w) != 1 {
				return nil, fmt.Errorf("grub.cfg: bad search line %q", l)
			}
			g.rootUUID = w[0]
		case l == "function c2vm_newest {":
			system = true
		case strings.HasPrefix(l, "\tset c2vm_k="):
			pickK = l
		case strings.HasPrefix(l, "\tset c2vm_i="):
			pickI = l
		case !linux && (strings.HasPrefix(l, "\t\tlinux16 \"$c2vm_k\" ") || strings.HasPrefix(l, "\t\tlinux \"$c2vm_k\" ")):
			words, ok := strings.CutSuffix(l[strings.Index(l, `"$c2vm_k" `)+len(`"$c2vm_k" `):], " $c2vm_cmdline")
			if !ok {
				return nil, fmt.Errorf("grub.cfg: the linux line does not end in $c2vm_cmdline")
			}
			var err error
			if g.args, err = grubWords(words); err != nil {
				return nil, fmt.Errorf("grub.cfg: the linux line: %v", err)
			}
			linux = true
		}
	}
	if g.rootUUID == "" || !linux {
		return nil, errors.New("grub.cfg: not c2vm's (no root search or linux line)")
	}
	if !system {
		if pickK != "\tset c2vm_k='"+appKernel+"'" || pickI != "\tset c2vm_i='"+appInitrd+"'" {
			return nil, errors.New("grub.cfg: boots neither a system's kernel nor app mode's /.c2vm files")
		}
		g.app, g.kernel, g.initrd = true, appKernel, appInitrd
	}
	return g, checkArgs(g.args)
}

// grubWords splits GRUB words as c2vm quotes them (grubQuote): each is
// made of single-quoted runs and \' for a quote, words are separated by
// spaces. Anything else (a variable, a double quote, a bare character)
// is not c2vm's and refused.
func grubWords(s string) ([]string, error) {
	var words []string
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		var w strings.Builder
		for s != "" && s[0] != ' ' {
			switch {
			case s[0] == '\'':
				end := strings.IndexByte(s[1:], '\'')
				if end < 0 {
					return nil, errors.New("an unterminated quote")
				}
				w.WriteString(s[1 : 1+end])
				s = s[2+end:]
			case strings.HasPrefix(s, `\'`):
				w.WriteByte('\'')
				s = s[2:]
			default:
				return nil, fmt.Errorf("an unquoted %q", s[0])
			}
		}
		if w.Len() > 0 {
			words = append(words, w.String())
		}
	}
	return words, nil
}

// bootEnvWords returns the c2vm_cmdline words of a GRUB environment block
// (the guest's /etc/c2vm/boot.env), as GRUB's load_env and the unquoted
// $c2vm_cmdline give them: none when the file is not an environment
// block, the last assignment's value split at spaces and tabs. A value
// GRUB would unescape (a backslash) is refused rather than guessed.
func bootEnvWords(b []byte) ([]string, error) {
	const sig = "# GRUB Environment Block\n"
	if !bytes.HasPrefix(b, []byte(sig)) {
		return nil, nil
	}
	value := ""
	for _, l := range strings.Split(string(b[len(sig):]), "\n") {
		if v, ok := strings.CutPrefix(l, "c2vm_cmdline="); ok {
			value = v
		}
	}
	if strings.ContainsRune(value, '\\') {
		return nil, errors.New("boot.env: c2vm_cmdline holds a backslash")
	}
	words := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' })
	return words, checkArgs(words)
}

// checkArgs refuses kernel arguments with control characters or too long
// together: they reach QEMU's -append as one argument, never a shell, but
// the kernel takes at most COMMAND_LINE_SIZE.
func checkArgs(args []string) error {
	n := 0
	for _, a := range args {
		for _, c := range []byte(a) {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("kernel argument %q holds a control character", a)
			}
		}
		n += len(a) + 1
	}
	if n > maxCmdline {
		return fmt.Errorf("kernel command line of %d bytes, more than the kernel's %d", n, maxCmdline)
	}
	return nil
}
