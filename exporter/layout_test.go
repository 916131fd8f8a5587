package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
	_, err = ParseFormats("qcow2,iso")
	if err == nil || !strings.Contains(err.Error(), `unknown format "iso"`) || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("unknown format: %v", err)
	}
	for _, name := range FormatNames() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("the error does not list %s: %v", name, err)
		}
	}
	if _, err := ParseFirmware("coreboot"); err == nil || !strings.Contains(err.Error(), "hybrid, bios, uefi") {
		t.Errorf("unknown firmware: %v", err)
	}
}

// Exactly the formats named are written; raw only when named or when
// nothing else is. ParseFormats' first entry is always the raw disk
// assembly writes, so callers that pass the named formats on drop it.
func TestFormatsExactlyWhatWasAsked(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "linux.img",
		" RAW ":                           "linux.img",
		"qcow2":                           "linux.qcow2",
		"raw,qcow2":                       "linux.img linux.qcow2",
		"qcow2,raw,qcow2":                 "linux.img linux.qcow2",
		"qcow2-uncompressed":              "linux.qcow2",
		"containerdisk,gce,vhd-azure,ova": "linux-azure.vhd linux.ova linux-gce.tar.gz disk/linux.qcow2",
	} {
		fs, err := ParseFormats(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var files []string
		for _, f := range Outputs(fs) {
			files = append(files, f.FileName())
		}
		if got := strings.Join(files, " "); got != want || fs[0].Make != MakeRaw {
			t.Errorf("--format %q writes %q (assembles %s), want %q", in, got, fs[0].Name, want)
		}
	}
	if fs, _ := ParseFormats("raw"); len(fs) != 1 {
		t.Errorf("raw alone: %d entries, want the assembled disk only", len(fs))
	}
	_, err := ParseFormats("qcow2,qcow2-uncompressed")
	if err == nil || !strings.Contains(err.Error(), "both write linux.qcow2") || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("two formats for one file: %v", err)
	}
}

// Each format's commands are what the docs promise: qcow2 compressed with
// zstd unless asked otherwise, Azure's fixed whole-size VHD, GCE's sparse
// tar, the OVA's streamOptimized VMDK, containerdisk owned by KubeVirt's
// QEMU; sparse formats of a small auto-sized disk created at 8 GiB and
// filled without writing zeros, the fixed VHDs never.
func TestFormatCommands(t *testing.T) {
	cmds := func(name string, rawSize int64) string {
		f, ok := lookupFormat(name)
		if !ok {
			t.Fatalf("no format %s", name)
		}
		var lines []string
		for _, c := range f.Commands("/in/linux.img", "/out/"+f.FileName(), rawSize, MinVirtualSize) {
			lines = append(lines, strings.Join(c, " "))
		}
		return strings.Join(lines, "; ")
	}
	cmd := func(name string) string { return cmds(name, 9<<30) }
	for name, want := range map[string]string{
		"qcow2":              "qemu-img convert -q -f raw -O qcow2 -o compression_type=zstd -c /in/linux.img /out/linux.qcow2",
		"qcow2-uncompressed": "qemu-img convert -q -f raw -O qcow2 /in/linux.img /out/linux.qcow2",
		"vhd-azure":          "qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on /in/linux.img /out/linux-azure.vhd",
		"containerdisk":      "qemu-img convert -q -f raw -O qcow2 -o compression_type=zstd -c /in/linux.img /out/disk/linux.qcow2",
		"raw":                "",
		"ova":                "",
	} {
		if got := cmd(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"qcow2": "qemu-img create -q -f qcow2 -o compression_type=zstd /out/linux.qcow2 8589934592; " +
			"qemu-img convert -q -n --target-is-zero -f raw -O qcow2 -c /in/linux.img /out/linux.qcow2",
		"vmdk": "qemu-img create -q -f vmdk /out/linux.vmdk 8589934592; qemu-img convert -q -n --target-is-zero -f raw -O vmdk /in/linux.img /out/linux.vmdk",
		"vhd":  "qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on /in/linux.img /out/linux.vhd",
	} {
		if got := cmds(name, 900<<20); got != want {
			t.Errorf("%s of a 900 MiB disk: %q, want %q", name, got, want)
		}
	}
	gce := cmd("gce")
	for _, want := range []string{"tar --create", "--file=/out/linux-gce.tar.gz", "--gzip", "--sparse", "--format=oldgnu", "disk.raw", "--directory=/in linux.img"} {
		if !strings.Contains(gce, want) {
			t.Errorf("gce: %q lacks %q", gce, want)
		}
	}
	ova, _ := lookupFormat("ova")
	if got := strings.Join(ova.ConvertArgs("a", "b"), " "); !strings.Contains(got, "-O vmdk -o subformat=streamOptimized") {
		t.Errorf("ova's disk: %q", got)
	}
	cd, _ := lookupFormat("containerdisk")
	if cd.Owner != 107 || cd.Dir() != "disk" {
		t.Errorf("containerdisk: owner %d in %q", cd.Owner, cd.Dir())
	}
}

// Azure takes a VHD whose virtual size is a whole number of MiB; c2vm's
// disks always are, whatever size was asked for.
func TestDiskIsWholeMiB(t *testing.T) {
	for _, c := range []struct{ root, disk int64 }{{100*mib + 1, 0}, {100 * mib, 67108865 * 3}, {7, 0}} {
		l, err := NewLayout(Hybrid, c.root, c.disk)
		if err != nil {
			t.Fatal(err)
		}
		if l.DiskBytes%mib != 0 {
			t.Errorf("root %d, --size %d: a %d byte disk", c.root, c.disk, l.DiskBytes)
		}
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
	e, err := Estimate(src.inv(), 0, systemHeadroom)
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
		if _, err := Estimate(f.inv(), 0, systemHeadroom); err == nil || !strings.Contains(err.Error(), "c2vm's limit") {
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
	// BIOS loads the kernel through its 16-bit entry, UEFI with linux.
	for _, c := range []struct{ platform, linux, initrd string }{{"i386-pc", "linux16", "initrd16"}, {"x86_64-efi", "linux", "initrd"}} {
		cfg := grubConfig(c.platform, "u-u-i-d", bf, args, true)
		for _, want := range []string{"search --no-floppy --fs-uuid --set=root 'u-u-i-d'",
			"load_env --skip-sig --file '/etc/c2vm/boot.env' c2vm_cmdline c2vm_menu\n",
			"if [ -f /vmlinuz -a -f /initrd.img ]", "elif [ -f /boot/vmlinuz -a -f /boot/initrd.img ]", "for c2vm_f in /boot/vmlinuz-*; do",
			c.linux + ` "$c2vm_k" 'root=UUID=u-u-i-d' 'rw' 'console=tty0' 'console=ttyS0,115200' 'quiet' 'foo="a b"' 'it'\''s' '$x;reboot' $c2vm_cmdline` + "\n",
			"\t" + c.initrd + " \"$c2vm_i\"\n", "menuentry 'Linux, previous kernel (c2vm)' {\n\tc2vm_pick_old\n"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s grub.cfg lacks %q:\n%s", c.platform, want, cfg)
			}
		}
		// The versioned kernel found at assembly only breaks a tie: the
		// guest may remove it.
		if strings.Count(cfg, "6.1.0-10") != 1 || !strings.Contains(cfg, "set c2vm_built='/boot/vmlinuz-6.1.0-10-amd64'\n") {
			t.Errorf("%s grub.cfg names the kernel found at assembly other than as c2vm_built:\n%s", c.platform, cfg)
		}
		// Straight to the kernel: boot comes before any menu entry exists,
		// and the menu is kept for Shift, boot.env and a failed load.
		// The menu entry holds the commands themselves, to be edited.
		m := strings.Index(cfg, "menuentry ")
		if b := strings.Index(cfg, "\tboot\n"); b < 0 || m < b || !strings.Contains(cfg, "keystatus --shift") || !strings.Contains(cfg[m:], c.linux+` "$c2vm_k" `) {
			t.Errorf("%s grub.cfg does not boot before its menu, or its menu entry is not editable:\n%s", c.platform, cfg)
		}
	}
	// An app disk boots c2vm's kernel, and has no previous one.
	app := grubConfig("x86_64-efi", "u", rootfs.BootFiles{Kernel: ".c2vm/vmlinuz", Initrd: ".c2vm/initrd.img"}, nil, false)
	if !strings.Contains(app, "set c2vm_k='/.c2vm/vmlinuz'\n\tset c2vm_i='/.c2vm/initrd.img'\n") || strings.Contains(app, "previous") || strings.Contains(app, "vmlinuz-*") {
		t.Errorf("app grub.cfg:\n%s", app)
	}
	for _, bad := range []string{"quiet\nmenuentry x {", "a\x00b", "unterminated \"quote", strings.Repeat("x", 2000)} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("cmdline %q accepted", bad)
		}
	}
}

// Out of space under --size auto is c2vm's own estimate failing: the
// advice cannot be "use --size auto".
func TestSizeErrorAdvice(t *testing.T) {
	given := (&SizeError{Given: 100 << 20, Min: 120 << 20}).Error()
	auto := (&SizeError{Given: 100 << 20, Min: 120 << 20, Auto: true}).Error()
	if !strings.Contains(given, "use --size auto") || strings.Contains(auto, "--size auto") || !strings.Contains(auto, "--size 120M") {
		t.Errorf("given: %s\nauto: %s", given, auto)
	}
}

// A sparse format of a small disk has a generous virtual size at no byte
// cost and the raw disk's exact content; a fixed VHD keeps the raw size.
func TestConvertVirtualSize(t *testing.T) {
	if _, err := lookTool("qemu-img"); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	raw := make([]byte, 4<<20)
	for i := range raw[:1<<20] {
		raw[i] = byte(i * 31)
	}
	if err := os.WriteFile(filepath.Join(dir, "linux.img"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"qcow2", "vmdk", "vdi", "vhdx", "vhd"} {
		f, _ := lookupFormat(name)
		if err := Convert(context.Background(), dir, f, "linux.img", f.File, MinVirtualSize); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := exec.Command("qemu-img", "info", "--output=json", filepath.Join(dir, f.File)).Output()
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			VirtualSize int64 `json:"virtual-size"`
			ActualSize  int64 `json:"actual-size"`
		}
		json.Unmarshal(out, &info)
		// A fixed VHD keeps the raw size (qemu-img counts its footer).
		if grown := info.VirtualSize == MinVirtualSize; grown != f.Sparse() {
			t.Errorf("%s: virtual size %d", name, info.VirtualSize)
		}
		if f.Sparse() && info.ActualSize > 8<<20 {
			t.Errorf("%s: %d bytes on disk for 1 MiB of data", name, info.ActualSize)
		}
		// The content is the raw disk's, and zeros beyond it.
		if b, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", f.QemuFmt, filepath.Join(dir, "linux.img"), filepath.Join(dir, f.File)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
	}
}
