package exporter

import (
	"github.com/c2vm/c2vm/exporter/grub"
	"github.com/c2vm/c2vm/exporter/rootfs"
)

// bootEnv is /etc/c2vm/boot.env as c2vm adds it to a system disk: a GRUB
// environment block, which GRUB reads at every boot ([grub.Config]), so the
// guest can change its kernel command line without a rebuild and for BIOS
// and UEFI alike. GRUB's load_env reads any size of block, comment lines
// included, and takes only the two names grub.cfg asks for.
const bootEnv = `# GRUB Environment Block
# Boot settings of this VM, read by GRUB at every boot (BIOS and UEFI)
# before the kernel starts; kernel upgrades leave this file alone.
#
# c2vm_cmdline: words added to the kernel command line after c2vm's own
#   (root=UUID=... rw console=tty0 console=ttyS0,115200 and the build's
#   --cmdline), as written: one line, no quoting.
# c2vm_menu: show GRUB's menu for this many seconds at each boot, with the
#   previous kernel as a second entry; empty boots at once.
#
# Keep the first line: without it GRUB ignores the file.
c2vm_cmdline=
c2vm_menu=
`

// bootEnvFiles adds /etc/c2vm/boot.env to a system tree that has none,
// only into real directories: nothing is written through a link.
func bootEnvFiles(inv *rootfs.Inventory) []extraFile {
	const dir = "etc/c2vm"
	if !inv.IsDir("etc") || inv.Has(grub.BootEnvPath[1:]) || inv.Has(dir) && !inv.IsDir(dir) {
		return nil
	}
	var out []extraFile
	if !inv.Has(dir) {
		out = append(out, extraFile{name: dir})
	}
	return append(out, extraFile{name: grub.BootEnvPath[1:], body: bootEnv})
}
