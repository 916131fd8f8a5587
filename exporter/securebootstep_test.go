package exporter

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/c2vm/c2vm/internal/diskmeta"
)

// Without a signed chain, require fails the build naming the missing
// piece and leaves nothing; auto says why and writes c2vm's GRUB.
func TestSecureBootWithoutChain(t *testing.T) {
	none := []string{t.TempDir()}
	_, err := tryAssemble(t, layoutSource(t, kernelLayer().Bytes()), Options{SecureBoot: secureboot.ModeRequire, SecureBootDirs: none})
	if err == nil || !strings.Contains(err.Error(), "Secure Boot is required") || !strings.Contains(err.Error(), "shim") {
		t.Fatalf("require without shim: %v", err)
	}
	var log bytes.Buffer
	d := assembleT(t, layoutSource(t, kernelLayer().Bytes()), Options{SecureBootDirs: none, Log: &log})
	if !strings.Contains(log.String(), "Secure Boot: the shim") || !strings.Contains(log.String(), "turn Secure Boot off") {
		t.Errorf("auto gave no note naming the piece:\n%s", log.String())
	}
	if m := readDiskMeta(t, d); m.SecureBoot {
		t.Errorf("c2vm.json says Secure Boot without a chain")
	}
	// c2vm's GRUB alone: its stub sets up the consoles, grub.cfg does not.
	if cfg := espFile(t, d, "::/EFI/BOOT/grub.cfg"); bytes.HasPrefix(cfg, []byte("serial")) || espHas(t, d, "::/EFI/BOOT/grubx64.efi") {
		t.Errorf("the ESP has a signed chain's files without a chain")
	}
}

// With Debian's chain (C2VM_SECURE_BOOT_DIR) and Debian's signed kernel
// (C2VM_FIXTURE's) the ESP boots shim, which loads the signed GRUB beside
// it, which reads grub.cfg from EFI/debian; the kernel is read from the
// root as it is written. The same tree with a fake kernel gets a note
// naming the kernel.
func TestFixtureSecureBootESP(t *testing.T) {
	dir, tree := os.Getenv("C2VM_SECURE_BOOT_DIR"), os.Getenv("C2VM_FIXTURE")
	if dir == "" || tree == "" {
		t.Skip("needs C2VM_SECURE_BOOT_DIR (hack/secureboot-files) and C2VM_FIXTURE (hack/fixture-tree)")
	}
	ks, _ := filepath.Glob(filepath.Join(tree, "boot/vmlinuz-*"))
	if len(ks) == 0 {
		t.Fatalf("no kernel in %s/boot", tree)
	}
	kernel, err := os.ReadFile(ks[0])
	must(t, err)
	v := strings.TrimPrefix(filepath.Base(ks[0]), "vmlinuz-")
	layer := kernelLayer().File("boot/vmlinuz-"+v, string(kernel), 0o644).File("boot/initrd.img-"+v, "initrd", 0o644)
	var log bytes.Buffer
	d := assembleT(t, layoutSource(t, layer.Bytes()), Options{SecureBoot: secureboot.ModeRequire, SecureBootDirs: []string{dir}, Log: &log})
	if !readDiskMeta(t, d).SecureBoot {
		t.Errorf("c2vm.json does not say Secure Boot")
	}
	shim, err := os.ReadFile(filepath.Join(dir, "usr/lib/shim/shimx64.efi.signed"))
	must(t, err)
	if !bytes.Equal(espFile(t, d, "::/EFI/BOOT/BOOTX64.EFI"), shim) {
		t.Errorf("BOOTX64.EFI is not Debian's shim")
	}
	cfg := string(espFile(t, d, "::/EFI/debian/grub.cfg"))
	if !strings.HasPrefix(cfg, "serial --unit=0") || !strings.Contains(cfg, "search --no-floppy --fs-uuid --set=root") ||
		cfg != string(espFile(t, d, "::/EFI/BOOT/grub.cfg")) {
		t.Errorf("EFI/debian/grub.cfg does not set up the console and find the root, or differs from EFI/BOOT's:\n%s", cfg)
	}
	for _, f := range []string{"::/EFI/BOOT/grubx64.efi", "::/EFI/BOOT/mmx64.efi"} {
		if len(espFile(t, d, f)) < 1<<19 {
			t.Errorf("%s missing or short", f)
		}
	}
	if espHas(t, d, "::/EFI/BOOT/fbx64.efi") {
		t.Errorf("shim's fallback is on the ESP: it would write boot entries")
	}
	log.Reset()
	d = assembleT(t, layoutSource(t, kernelLayer().Bytes()), Options{SecureBootDirs: []string{dir}, Log: &log})
	if !strings.Contains(log.String(), "Secure Boot: the kernel (/boot/vmlinuz-6.1.0-1-amd64)") || readDiskMeta(t, d).SecureBoot {
		t.Errorf("a fake kernel: no note naming it, or Secure Boot claimed:\n%s", log.String())
	}
}

func readDiskMeta(t *testing.T, d assembled) *diskmeta.Meta {
	t.Helper()
	m, err := diskmeta.ForDisk(d.path)
	if err != nil || m == nil {
		t.Fatalf("c2vm.json: %v", err)
	}
	return m
}

// espFile reads a file from the disk's ESP with mtools.
func espFile(t *testing.T, d assembled, p string) []byte {
	t.Helper()
	cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", d.path, d.res.Layout.ESP.Start), p)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mtype %s: %v", p, err)
	}
	return out
}

// espHas says whether the disk's ESP holds p.
func espHas(t *testing.T, d assembled, p string) bool {
	t.Helper()
	cmd := exec.Command("mdir", "-b", "-i", fmt.Sprintf("%s@@%d", d.path, d.res.Layout.ESP.Start), p)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	return cmd.Run() == nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
