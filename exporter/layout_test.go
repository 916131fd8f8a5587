package exporter

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/rootfs"
)

func TestLayoutHybrid(t *testing.T) {
	l, err := NewLayout(Hybrid, 700*mib+5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Parts) != 3 || l.BIOSBoot.Num != 1 || l.ESP.Num != 2 || l.Root.Num != 3 {
		t.Fatalf("partitions: %+v", l.Parts)
	}
	prevEnd := mib
	for _, p := range l.Parts {
		if p.Start%mib != 0 || p.Size%mib != 0 {
			t.Errorf("partition %d not MiB aligned: %d+%d", p.Num, p.Start, p.Size)
		}
		if p.Start < prevEnd {
			t.Errorf("partition %d overlaps", p.Num)
		}
		prevEnd = p.Start + p.Size
	}
	if l.Root.Size != 701*mib {
		t.Errorf("root %d, want rounded up to 701 MiB", l.Root.Size)
	}
	// The backup GPT (33 sectors) fits after the root partition.
	if l.DiskBytes-(l.Root.Start+l.Root.Size) < 33*sectorSize {
		t.Errorf("no room for the backup GPT")
	}
}

func TestLayoutFirmwares(t *testing.T) {
	b, _ := NewLayout(BIOS, 100*mib, 0)
	if b.ESP != nil || b.BIOSBoot == nil || b.Root.Num != 2 {
		t.Errorf("bios layout: %+v", b.Parts)
	}
	u, _ := NewLayout(UEFI, 100*mib, 0)
	if u.BIOSBoot != nil || u.ESP == nil || u.Root.Num != 2 {
		t.Errorf("uefi layout: %+v", u.Parts)
	}
}

func TestLayoutExplicitSize(t *testing.T) {
	l, err := NewLayout(Hybrid, 500*mib, 4<<30)
	if err != nil {
		t.Fatal(err)
	}
	if l.DiskBytes != 4<<30 || l.Root.Start+l.Root.Size != l.DiskBytes-mib {
		t.Errorf("root does not fill the disk: %+v disk %d", l.Root, l.DiskBytes)
	}
	_, err = NewLayout(Hybrid, 500*mib, 300*mib)
	var se *SizeError
	if !errors.As(err, &se) || se.Min != 543*mib {
		t.Fatalf("got %v, want a SizeError with minimum 543 MiB", err)
	}
	if !strings.Contains(err.Error(), "at least 543M") {
		t.Errorf("message does not name the minimum: %v", err)
	}
}

func TestSfdiskScript(t *testing.T) {
	l, _ := NewLayout(Hybrid, 100*mib, 0)
	l.Root.UUID = "11111111-1111-4111-8111-111111111111"
	s := l.sfdiskScript("22222222-2222-4222-8222-222222222222")
	for _, want := range []string{"label: gpt", "label-id: 22222222-2222-4222-8222-222222222222",
		"start=2048, size=2048, type=" + typeBIOSBoot, `attrs="LegacyBIOSBootable"`,
		"type=" + typeRootX64 + ", uuid=11111111-1111-4111-8111-111111111111"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"auto": 0, "": 0, "8G": 8 << 30, "512M": 512 << 20, "1.5G": 3 << 29, "2GiB": 2 << 30, "1T": 1 << 40, "67108864": 64 << 20, " 100 mb ": 100 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for bad, why := range map[string]string{"big": "not a number", "-1G": "not a number", "0": "smaller than", "1X": "not a number",
		"nan": "not a number", "NaN": "not a number", "inf": "not a number", "+Inf": "not a number", "0.1": "not a whole number",
		"0.5M": "smaller than", "0.1G": "not a whole number", "1e3G": "not a number", "4096": "smaller than", "65T": "larger than", "1.2.3G": "not a number"} {
		_, err := ParseSize(bad)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("ParseSize(%q): %v, want %q", bad, err, why)
		}
	}
}

func TestParseFormatsAndFirmware(t *testing.T) {
	fs, err := ParseFormats("qcow2, vhd,qcow2")
	if err != nil || len(fs) != 3 || fs[0].Name != "raw" || fs[1].FileName() != "linux.qcow2" || fs[2].QemuFmt != "vpc" {
		t.Errorf("ParseFormats: %+v %v", fs, err)
	}
	if _, err := ParseFormats("qcow2,iso"); err == nil || !strings.Contains(err.Error(), `unknown format "iso"`) {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := ParseFirmware("coreboot"); err == nil || !strings.Contains(err.Error(), "hybrid, bios, uefi") {
		t.Errorf("unknown firmware: %v", err)
	}
}

func TestDeriveIDs(t *testing.T) {
	a, b := deriveIDs([]byte("input one")), deriveIDs([]byte("input two"))
	if a != deriveIDs([]byte("input one")) {
		t.Error("ids not deterministic")
	}
	if a.Disk == b.Disk || a.RootFS == b.RootFS || a.Root == b.Root || a.ESPSerial == b.ESPSerial {
		t.Error("different inputs share ids")
	}
	seen := map[string]bool{}
	for _, u := range []string{a.Disk, a.Root, a.ESPPart, a.BIOSPart, a.RootFS} {
		if seen[u] {
			t.Errorf("id %s used twice in one disk", u)
		}
		seen[u] = true
		if len(u) != 36 || u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Errorf("%s is not a version 4 UUID", u)
		}
	}
}

func TestEstimate(t *testing.T) {
	src := &fakeInventory{entries: 20001, dirs: 1, content: 20000 * 30000, blocks: 20000 * 8}
	e, err := Estimate(src.inv(), 0)
	if err != nil {
		t.Fatal(err)
	}
	content := int64(20000) * 32768
	if e.Content < content || e.Min < e.Content || e.Auto <= e.Min {
		t.Errorf("estimate out of order: %+v", e)
	}
	// Overhead (inodes, journal, metadata) stays a modest part of content.
	if over := float64(e.Min-content) / float64(content); over > 0.12 {
		t.Errorf("ext4 overhead %.0f%% of content", over*100)
	}
	if e.Inodes < 20001 {
		t.Errorf("inodes %d for 20001 entries", e.Inodes)
	}
}

// Absurd inventories (what a hostile header could declare) are refused at
// once, never looped over.
func TestEstimateAbsurd(t *testing.T) {
	for _, f := range []fakeInventory{{entries: 1, blocks: 1 << 52}, {entries: 1 << 40, blocks: 1}, {entries: 1, blocks: math.MaxInt64 - 10}} {
		start := time.Now()
		if _, err := Estimate(f.inv(), 0); err == nil || !strings.Contains(err.Error(), "c2vm's limit") {
			t.Errorf("%+v: %v", f, err)
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Errorf("%+v took %s", f, time.Since(start))
		}
	}
}

type fakeInventory struct{ entries, dirs, content, blocks int64 }

func (f fakeInventory) inv() *rootfs.Inventory {
	return &rootfs.Inventory{Entries: f.entries, Dirs: f.dirs, Content: f.content, Blocks: f.blocks}
}

func TestGrubConfigQuotes(t *testing.T) {
	bf := rootfs.BootFiles{Stable: [][2]string{{"vmlinuz", "initrd.img"}}, Kernel: "boot/vmlinuz-6.1.0-10-amd64", Initrd: "boot/initrd.img-6.1.0-10-amd64"}
	args, err := ParseCmdline(`quiet foo="a b" it's $x;reboot`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := grubConfig("u-u-i-d", bf, args)
	for _, want := range []string{"search --no-floppy --fs-uuid --set=root 'u-u-i-d'", "if [ -e '/vmlinuz' -a -e '/initrd.img' ]",
		`linux '/boot/vmlinuz-6.1.0-10-amd64' 'root=UUID=u-u-i-d' 'rw' 'console=tty0' 'console=ttyS0,115200' 'quiet' 'foo="a b"' 'it'\''s' '$x;reboot'`, "\tfi\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	for _, bad := range []string{"quiet\nmenuentry x {", "a\x00b", "unterminated \"quote", strings.Repeat("x", 2000)} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("cmdline %q accepted", bad)
		}
	}
}
