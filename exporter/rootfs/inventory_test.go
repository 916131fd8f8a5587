package rootfs

import (
	"testing"
)

func TestVersionLess(t *testing.T) {
	if !VersionLess("5.15.0-9-generic", "5.15.0-10-generic") || VersionLess("6.1.0-10", "6.1.0-9") || !VersionLess("6.1", "6.10") {
		t.Error("version order")
	}
}

// FindBoot picks the distribution's links when they resolve, else the
// newest kernel by version order (several may be installed), and never a
// kernel whose name could break the boot loader's configuration.
func TestFindBoot(t *testing.T) {
	inv := newInventory()
	reg := &meta{kind: KindReg}
	for _, n := range []string{"boot/vmlinuz-6.1.0-9-amd64", "boot/initrd.img-6.1.0-9-amd64", "boot/vmlinuz-6.1.0-10-amd64",
		"boot/initrd.img-6.1.0-10-amd64", "boot/vmlinuz-7.0-noinitrd", "boot/vmlinuz-9.9\n menuentry", "boot/initrd.img-9.9\n menuentry"} {
		inv.add(n, reg, "", false)
	}
	sym := &meta{kind: KindSymlink}
	inv.add("vmlinuz", sym, "boot/vmlinuz-6.1.0-10-amd64", false)
	inv.add("initrd.img", sym, "/boot/initrd.img-6.1.0-10-amd64", false)
	inv.add("boot/vmlinuz", sym, "vmlinuz-dangling", false)
	bf, ok := inv.FindBoot()
	if !ok || bf.Kernel != "boot/vmlinuz-6.1.0-10-amd64" || bf.Initrd != "boot/initrd.img-6.1.0-10-amd64" || bf.Version != "6.1.0-10-amd64" {
		t.Errorf("newest kernel: %+v", bf)
	}
	if len(bf.Stable) != 1 || bf.Stable[0][0] != "vmlinuz" {
		t.Errorf("stable symlinks: %+v (a dangling one must not count)", bf.Stable)
	}
}
