package disk

import (
	"errors"
	"strings"
	"testing"
)

func TestLayoutHybrid(t *testing.T) {
	l, err := NewLayout(Hybrid, AMD64, 700*MiB+5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Parts) != 3 || l.BIOSBoot.Num != 1 || l.ESP.Num != 2 || l.Root.Num != 3 {
		t.Fatalf("partitions: %+v", l.Parts)
	}
	prevEnd := MiB
	for _, p := range l.Parts {
		if p.Start%MiB != 0 || p.Size%MiB != 0 {
			t.Errorf("partition %d not MiB aligned: %d+%d", p.Num, p.Start, p.Size)
		}
		if p.Start < prevEnd {
			t.Errorf("partition %d overlaps", p.Num)
		}
		prevEnd = p.Start + p.Size
	}
	if l.Root.Size != 701*MiB {
		t.Errorf("root %d, want rounded up to 701 MiB", l.Root.Size)
	}
	// The backup GPT (33 sectors) fits after the root partition.
	if l.DiskBytes-(l.Root.Start+l.Root.Size) < 33*SectorSize {
		t.Errorf("no room for the backup GPT")
	}
}

func TestLayoutFirmwares(t *testing.T) {
	b, _ := NewLayout(BIOS, AMD64, 100*MiB, 0)
	if b.ESP != nil || b.BIOSBoot == nil || b.Root.Num != 2 {
		t.Errorf("bios layout: %+v", b.Parts)
	}
	u, _ := NewLayout(UEFI, AMD64, 100*MiB, 0)
	if u.BIOSBoot != nil || u.ESP == nil || u.Root.Num != 2 {
		t.Errorf("uefi layout: %+v", u.Parts)
	}
}

func TestLayoutExplicitSize(t *testing.T) {
	l, err := NewLayout(Hybrid, AMD64, 500*MiB, 4<<30)
	if err != nil {
		t.Fatal(err)
	}
	if l.DiskBytes != 4<<30 || l.Root.Start+l.Root.Size != l.DiskBytes-MiB {
		t.Errorf("root does not fill the disk: %+v disk %d", l.Root, l.DiskBytes)
	}
	_, err = NewLayout(Hybrid, AMD64, 500*MiB, 300*MiB)
	var se *SizeError
	if !errors.As(err, &se) || se.Min != 543*MiB {
		t.Fatalf("got %v, want a SizeError with minimum 543 MiB", err)
	}
	if !strings.Contains(err.Error(), "at least 543M") {
		t.Errorf("message does not name the minimum: %v", err)
	}
}

func TestSfdiskScript(t *testing.T) {
	l, _ := NewLayout(Hybrid, AMD64, 100*MiB, 0)
	l.Root.UUID = "11111111-1111-4111-8111-111111111111"
	s := l.SfdiskScript("22222222-2222-4222-8222-222222222222")
	for _, want := range []string{"label: gpt", "label-id: 22222222-2222-4222-8222-222222222222",
		"start=2048, size=2048, type=" + TypeBIOSBoot, `attrs="LegacyBIOSBootable"`,
		"type=" + TypeRootX64 + ", uuid=11111111-1111-4111-8111-111111111111"} {
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
	for _, c := range []struct{ root, disk int64 }{{100*MiB + 1, 0}, {100 * MiB, 67108865 * 3}, {7, 0}} {
		l, err := NewLayout(Hybrid, AMD64, c.root, c.disk)
		if err != nil {
			t.Fatal(err)
		}
		if l.DiskBytes%MiB != 0 {
			t.Errorf("root %d, --size %d: a %d byte disk", c.root, c.disk, l.DiskBytes)
		}
	}
}

func TestDeriveIDs(t *testing.T) {
	a, b := DeriveIDs([]byte("input one")), DeriveIDs([]byte("input two"))
	if a != DeriveIDs([]byte("input one")) {
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

// Out of space under --size auto is c2vm's own estimate failing: the
// advice cannot be "use --size auto".
func TestSizeErrorAdvice(t *testing.T) {
	given := (&SizeError{Given: 100 << 20, Min: 120 << 20}).Error()
	auto := (&SizeError{Given: 100 << 20, Min: 120 << 20, Auto: true}).Error()
	if !strings.Contains(given, "use --size auto") || strings.Contains(auto, "--size auto") || !strings.Contains(auto, "--size 120M") {
		t.Errorf("given: %s\nauto: %s", given, auto)
	}
}

func TestParseCmdlineRefuses(t *testing.T) {
	for _, bad := range []string{"quiet\nmenuentry x {", "a\x00b", "unterminated \"quote", strings.Repeat("x", 2000)} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("cmdline %q accepted", bad)
		}
	}
}
