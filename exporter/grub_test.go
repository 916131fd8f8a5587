package exporter

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/grub"
)

// TestGrubConfigOnDisk reads a hybrid disk's grub.cfg where each image's
// stub reads it: the blocklist the BIOS stub names, and the ESP file next
// to BOOTX64.EFI. Both are the disk's configuration, naming its root.
func TestGrubConfigOnDisk(t *testing.T) {
	needTools(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	d := assembleT(t, layoutSource(t, kernelLayer().Bytes()), Options{})
	l := d.res.Layout

	m := regexp.MustCompile(`source "\(\$c2vm_disk,gpt(\d+)\)(\d+)\+(\d+)"`).FindStringSubmatch(grub.Stub(grub.PC))
	if m == nil {
		t.Fatalf("the BIOS stub names no blocklist:\n%s", grub.Stub(grub.PC))
	}
	part, _ := strconv.Atoi(m[1])
	first, _ := strconv.ParseInt(m[2], 10, 64)
	n, _ := strconv.ParseInt(m[3], 10, 64)
	if part != l.BIOSBoot.Num {
		t.Fatalf("the stub reads partition %d, the BIOS boot partition is %d", part, l.BIOSBoot.Num)
	}
	img, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	area := img[l.BIOSBoot.Start+first*disk.SectorSize : l.BIOSBoot.Start+(first+n)*disk.SectorSize]
	cfg := grub.Config{RootUUID: d.res.IDs.RootFS, Boot: d.res.Boot, Follow: d.res.Mode == disk.ModeSystem}.Script(grub.PC)
	if want := cfg + strings.Repeat("\n", len(area)-len(cfg)); string(area) != want || !strings.Contains(cfg, "'root=UUID="+d.res.IDs.RootFS+"'") {
		t.Fatalf("the BIOS stub's blocklist does not hold this disk's grub.cfg padded with newlines:\n%q", area[:min(len(area), 400)])
	}
	// GRUB 2.12 leaves $cmdpath empty under BIOS: the disk is then hd0.
	if !strings.Contains(grub.Stub(grub.PC), "set c2vm_disk=hd0\nregexp --set=1:c2vm_disk ") {
		t.Errorf("the BIOS stub has no hd0 to fall back on:\n%s", grub.Stub(grub.PC))
	}
	// core.img ends before the configuration.
	if bytes.Count(img[l.BIOSBoot.Start+first*disk.SectorSize-disk.SectorSize:l.BIOSBoot.Start+first*disk.SectorSize], []byte{0}) != disk.SectorSize {
		t.Error("the sector before grub.cfg is not empty: core.img reaches it")
	}

	cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", d.path, l.ESP.Start), "::/EFI/BOOT/grub.cfg")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype: %v\n%s", err, out)
	}
	// The same configuration, but for the kernel's entry.
	efi := strings.NewReplacer("\tlinux16 ", "\tlinux ", "\tinitrd16 ", "\tinitrd ").Replace(cfg)
	if efi != string(out) || strings.Contains(string(out), "16 ") ||
		!strings.Contains(cfg, "\t\tlinux16 ") || !strings.Contains(string(out), "\t\tlinux ") {
		t.Errorf("the ESP's grub.cfg is not the BIOS one with linux for linux16:\n%s\n---\n%s", out, cfg)
	}
	if !strings.Contains(grub.Stub(grub.AMD64EFI), `source "$cmdpath/grub.cfg"`) {
		t.Errorf("the EFI stub does not read grub.cfg beside the image:\n%s", grub.Stub(grub.AMD64EFI))
	}
}
