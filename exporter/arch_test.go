package exporter

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/initramfs"
	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// fakeKernel is the head of a kernel image for arch, as ImageArch reads it.
func fakeKernel(arch disk.Arch) string {
	b := make([]byte, 1024)
	copy(b, "MZ")
	if arch == disk.ARM64 {
		copy(b[56:], "ARM\x64")
	} else {
		copy(b[0x202:], "HdrS")
	}
	return string(b)
}

func archLayer(arch disk.Arch) *ocitest.Tar {
	return ocitest.NewTar().Dir("boot", 0o755).
		File("boot/vmlinuz-6.1.0-1-"+string(arch), fakeKernel(arch), 0o644).
		File("boot/initrd.img-6.1.0-1-"+string(arch), "initrd", 0o644).
		File("sbin/init", "#!/bin/sh\n", 0o755)
}

// needARM64Tools skips like needTools when arm64's GRUB is missing.
func needARM64Tools(t *testing.T) {
	t.Helper()
	needTools(t)
	if err := checkTools(Options{Firmware: disk.UEFI, Arch: disk.ARM64}); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// An arm64 disk: no BIOS boot partition, arm64's root type, GRUB for
// arm64 as the removable-media file BOOTAA64.EFI, a kernel command line
// ending on the PL011 console, and c2vm.json saying arm64 and UEFI.
func TestAssembleARM64(t *testing.T) {
	needARM64Tools(t)
	var log bytes.Buffer
	d := assembleT(t, layoutSource(t, archLayer(disk.ARM64).Bytes()), Options{Arch: disk.ARM64, Log: &log})
	l := d.res.Layout
	if l.BIOSBoot != nil || l.ESP == nil || l.Root.Type != disk.TypeRootARM64 {
		t.Fatalf("arm64 partitions: %+v", l.Parts)
	}
	boot := espFile(t, d, "::/EFI/BOOT/BOOTAA64.EFI")
	if a, ok := initramfs.ImageArch(boot); a != disk.ARM64 || !ok {
		t.Errorf("BOOTAA64.EFI is not an arm64 PE image (%q, %v)", a, ok)
	}
	if espHas(t, d, "::/EFI/BOOT/BOOTX64.EFI") {
		t.Error("an arm64 ESP holds BOOTX64.EFI")
	}
	cfg := string(espFile(t, d, "::/EFI/BOOT/grub.cfg"))
	if !strings.Contains(cfg, "'console=ttyS0,115200' 'console=ttyAMA0,115200'") || strings.Contains(cfg, "linux16") {
		t.Errorf("arm64 grub.cfg:\n%s", cfg)
	}
	if m := readDiskMeta(t, d); m.Arch != "arm64" || m.Firmware != "uefi" || m.SecureBoot {
		t.Errorf("c2vm.json: %+v", m)
	}
	if !strings.Contains(log.String(), "no signed chain for arm64") {
		t.Errorf("no Secure Boot note in the log:\n%s", log.String())
	}
	if d.Exists("boot/vmlinuz-6.1.0-1-arm64") == false {
		t.Error("the kernel is not on the root")
	}
}

// A kernel for the other machine is refused with the fix, and nothing is
// written; so are BIOS and a required Secure Boot on arm64.
func TestAssembleArchRefusals(t *testing.T) {
	needARM64Tools(t)
	for _, c := range []struct {
		name string
		src  disk.Arch
		opts Options
		want []string
	}{
		{"arm64 kernel on an amd64 disk", disk.ARM64, Options{}, []string{"is for arm64 machines, and the disk is for amd64", "--arch arm64", "--platform linux/arm64"}},
		{"amd64 kernel on an arm64 disk", disk.AMD64, Options{Arch: disk.ARM64}, []string{"is for amd64 machines, and the disk is for arm64", "--arch amd64"}},
		{"BIOS on arm64", disk.ARM64, Options{Arch: disk.ARM64, Firmware: disk.BIOS}, []string{"no BIOS", "uefi"}},
		{"Secure Boot required on arm64", disk.ARM64, Options{Arch: disk.ARM64, SecureBoot: secureboot.ModeRequire}, []string{"no signed boot chain for arm64", "C2VM_SECURE_BOOT=off"}},
	} {
		_, err := tryAssemble(t, layoutSource(t, archLayer(c.src).Bytes()), c.opts)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want %q", c.name, err, w)
			}
		}
	}
}

// App mode's kernel for the other machine is one error with one fix.
func TestAppKernelArch(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(dir+"/boot", 0o755))
	must(t, os.MkdirAll(dir+"/lib/modules/6.1.0-1-amd64/kernel", 0o755))
	must(t, os.WriteFile(dir+"/lib/modules/6.1.0-1-amd64/kernel/virtio_blk.ko", []byte("x"), 0o644))
	must(t, os.WriteFile(dir+"/boot/vmlinuz-6.1.0-1-amd64", []byte(fakeKernel(disk.AMD64)), 0o644))
	k, err := initramfs.FindKernel(dir)
	if err != nil {
		t.Skipf("a fake kernel root: %v", err)
	}
	_, err = checkAppKernel(k, disk.ARM64)
	if err == nil || !strings.Contains(err.Error(), "is for amd64 machines, and the disk is for arm64") ||
		strings.Count(err.Error(), "fix:") != 1 || !strings.Contains(err.Error(), "--kernel-dir") {
		t.Errorf("amd64 kernel for an arm64 app disk: %v", err)
	}
	if _, err := checkAppKernel(k, disk.AMD64); err != nil {
		t.Errorf("amd64 kernel for an amd64 app disk: %v", err)
	}
}

// The VM's init must be a static binary for the disk's machine.
func TestCheckInit(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := disk.ARM64
	if runtime.GOARCH == "arm64" {
		other = disk.AMD64
	}
	if err := checkInit(self, other); err == nil || !strings.Contains(err.Error(), "not for "+string(other)) {
		t.Errorf("a binary for %s passed as %s's init: %v", runtime.GOARCH, other, err)
	}
	if err := checkInit("/bin/sh", disk.Arch(runtime.GOARCH)); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh passed as the init: %v", err)
	}
	t.Setenv("C2VM_INIT_DIR", t.TempDir())
	if _, err := initFor(disk.Arch("mips64")); err == nil || !strings.Contains(err.Error(), "c2vm-mips64") || !strings.Contains(err.Error(), "GOARCH=mips64") {
		t.Errorf("no init for mips64: %v", err)
	}
}
