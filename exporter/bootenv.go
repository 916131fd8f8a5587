package exporter

import (
	"github.com/c2vm/c2vm/exporter/grub"
	"github.com/c2vm/c2vm/exporter/rootfs"
)

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
