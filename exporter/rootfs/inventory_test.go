package rootfs

import (
	"fmt"
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

// Boot stays bounded however many kernels and initramfs an image holds,
// and keeps the paths mode selection reads.
func TestBootInventoryBounded(t *testing.T) {
	inv := newInventory()
	reg := &meta{kind: KindReg}
	inv.add("boot", &meta{kind: KindDir}, "", false)
	for i := range 5000 {
		inv.add(fmt.Sprintf("boot/initrd.img-0.%04d", i), reg, "", false)
	}
	inv.add("boot/initrd.img-6.1", reg, "", false)
	for i := range 5000 {
		inv.add(fmt.Sprintf("boot/vmlinuz-0.%04d", i), reg, "", false)
	}
	inv.add("boot/vmlinuz-6.1", reg, "", false)
	inv.add("sbin", &meta{kind: KindDir}, "", false)
	inv.add("sbin/init", reg, "", false)
	if len(inv.Boot) > 3*maxBootEntries || !inv.Has("sbin/init") || !inv.IsDir("boot") {
		t.Errorf("%d entries kept, sbin/init %v", len(inv.Boot), inv.Has("sbin/init"))
	}
}
