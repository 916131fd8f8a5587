package vmrun

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
)

// directPlan is a plan for disk as prepare leaves it when planBoot runs,
// with no VM: the direct boot's files go to its temporary directory.
func directPlan(t *testing.T, disk string, o Options, accel string) *plan {
	t.Helper()
	o.Disk = disk
	p := testPlan(t, o)
	fi, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	p.id, p.accelKind = identityOf(fi), accel
	if p.head, err = readHead(context.Background(), disk, "raw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)
	return p
}

// appFiles is an app disk's root: c2vm's files and a program.
func appFiles(kernel, initrd []byte) map[string]testEntry {
	return map[string]testEntry{
		".c2vm/vmlinuz":     {data: string(kernel)},
		".c2vm/initrd.img":  {data: string(initrd)},
		".c2vm/config.json": {data: `{"cmd":["/prog"]}`},
		"prog":              {data: "program"},
	}
}

func readStoreFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDirectBootApp reads an app disk as c2vm lays it out and starts its
// kernel under TCG: the decompressed kernel, the initramfs without the
// modules the lean machine lacks, grub.cfg's command line.
func TestDirectBootApp(t *testing.T) {
	vmlinux := testVmlinux(true)
	disk := testDisk(t, appGrubCfg(testArgs), appFiles(testBzImage(vmlinux), testInitramfs()))
	p := directPlan(t, disk, Options{}, "tcg")
	p.planBoot(context.Background())
	d := p.direct
	if d == nil {
		t.Fatalf("no direct boot: %q", p.notes)
	}
	if want := "root=UUID=" + testRootUUID + " rw console=tty0 console=ttyS0,115200 quiet panic=-1 cryptomgr.notests tsc=reliable"; d.cmdline != want {
		t.Errorf("command line %q, want %q", d.cmdline, want)
	}
	if d.kernel != filepath.Join(p.work, bootVmlinuxFile) || readStoreFile(t, d.kernel) != string(vmlinux) {
		t.Errorf("kernel %s is not the decompressed one", d.kernel)
	}
	slim := readStoreFile(t, d.initrd)
	if d.initrd != filepath.Join(p.work, bootSlimFile) || !d.lean || strings.Contains(slim, "AHCI") || !strings.Contains(slim, "VIRTIO") {
		t.Errorf("initramfs %s (lean %v) is not the slim one:\n%q", d.initrd, d.lean, slim)
	}
	if !strings.Contains(strings.Join(p.notes, "\n"), "starting the disk's kernel directly") {
		t.Errorf("no note on the direct boot: %q", p.notes)
	}
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, pair := range [][2]string{{"-machine", leanMachine}, {"-kernel", d.kernel}, {"-initrd", d.initrd}, {"-append", d.cmdline},
		{"-device", "virtio-net-pci,netdev=net0,romfile="}} {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("%s %s missing from %s", pair[0], pair[1], line)
		}
	}
	if !strings.Contains(line, "-nodefaults") || strings.Contains(line, "pflash") {
		t.Errorf("not the lean machine without firmware: %s", line)
	}
}

// TestDirectBootKVMAndOtherHardware: under KVM the kernel decompresses
// itself (quickly, and placing itself at random), and hardware other than
// the lean machine's gets the disk's complete initramfs on the machine
// asked for.
func TestDirectBootKVMAndOtherHardware(t *testing.T) {
	disk := testDisk(t, appGrubCfg(testArgs), appFiles(testBzImage(testVmlinux(true)), testInitramfs()))
	p := directPlan(t, disk, Options{DiskBus: "sata"}, "kvm")
	p.planBoot(context.Background())
	d := p.direct
	if d == nil {
		t.Fatalf("no direct boot: %q", p.notes)
	}
	if d.kernel != filepath.Join(p.work, bootKernelFile) || d.initrd != filepath.Join(p.work, bootInitrdFile) || d.lean || strings.Contains(d.cmdline, "tsc=") {
		t.Errorf("kernel %s, initramfs %s, lean %v, command line %q", d.kernel, d.initrd, d.lean, d.cmdline)
	}
	args, err := p.qemuArgs("kvm", "bios")
	if err != nil {
		t.Fatal(err)
	}
	if !hasPair(args, "-machine", "q35") || strings.Contains(strings.Join(args, " "), "-nodefaults") {
		t.Errorf("not the machine asked for: %q", args)
	}
}

// TestDirectBootFallsBack: a disk that is not an app disk as c2vm makes
// them, or whose files are odd, boots through the firmware; --boot auto
// says so when the disk is an app disk or claims to be one.
func TestDirectBootFallsBack(t *testing.T) {
	bz := string(testBzImage(testVmlinux(true)))
	with := func(over map[string]testEntry, drop ...string) map[string]testEntry {
		f := appFiles([]byte(bz), testInitramfs())
		for _, d := range drop {
			delete(f, d)
		}
		for k, v := range over {
			f[k] = v
		}
		return f
	}
	for _, c := range []struct {
		name  string
		cfg   string
		files map[string]testEntry
		o     Options
		meta  bool   // c2vm.json says app
		note  string // "": none
	}{
		{"a system disk", systemGrubCfg(testArgs), with(nil), Options{}, false, ""},
		{"a system disk, c2vm.json says app", systemGrubCfg(testArgs), with(nil), Options{}, true, "not an app disk"},
		{"grub.cfg: a control character", appGrubCfg(testArgs + " 'quiet\x01'"), with(nil), Options{}, false, "control character"},
		{"grub.cfg: a variable", appGrubCfg(testArgs + " $evil"), with(nil), Options{}, true, `unquoted '$'`},
		{"grub.cfg: too long", appGrubCfg(testArgs + " '" + strings.Repeat("a", 2100) + "'"), with(nil), Options{}, false, "more than the kernel's 2047"},
		{"grub.cfg: another kernel", strings.Replace(appGrubCfg(testArgs), "/.c2vm/vmlinuz", "/boot/evil", 1), with(nil), Options{}, true, "neither a system's kernel nor"},
		{"grub.cfg: another root", strings.Replace(appGrubCfg(testArgs), "search --no-floppy --fs-uuid --set=root '"+testRootUUID, "search --no-floppy --fs-uuid --set=root '"+strings.Repeat("0", 8)+testRootUUID[8:], 1), with(nil), Options{}, false, "no ext4 filesystem on the disk has the UUID"},
		{"the kernel: a symlink out", appGrubCfg(testArgs), with(map[string]testEntry{".c2vm/vmlinuz": {link: "../../../../etc/passwd"}}), Options{}, false, "a symlink is on the way"},
		{"/.c2vm: a symlink", appGrubCfg(testArgs), map[string]testEntry{".c2vm": {link: "boot"}, "boot/vmlinuz": {data: bz}, "boot/initrd.img": {data: "i"}}, Options{}, false, "a symlink is on the way"},
		{"no initramfs", appGrubCfg(testArgs), with(nil, ".c2vm/initrd.img"), Options{}, false, "no such file"},
		{"the initramfs: a directory", appGrubCfg(testArgs), with(map[string]testEntry{".c2vm/initrd.img": {dir: true}}, ".c2vm/initrd.img"), Options{}, false, "not a regular file"},
		{"an oversize kernel", appGrubCfg(testArgs), with(map[string]testEntry{".c2vm/vmlinuz": {size: maxKernelBytes + 1}}), Options{}, false, "file too large"},
		{"an initramfs the kernel cannot reach", appGrubCfg(testArgs), with(map[string]testEntry{".c2vm/vmlinuz": {data: lowInitrdMax(bz)}}), Options{}, false, "initrd_addr_max 0x10"},
		{"not a bzImage", appGrubCfg(testArgs), with(map[string]testEntry{".c2vm/vmlinuz": {data: "MZ not a kernel"}}), Options{}, false, "not an x86 bzImage"},
		{"boot.env: a backslash", appGrubCfg(testArgs), with(map[string]testEntry{"etc/c2vm/boot.env": {data: "# GRUB Environment Block\nc2vm_cmdline=a\\nb\n"}}), Options{}, false, "backslash"},
		{"firmware asked for", appGrubCfg(testArgs), with(nil), Options{Boot: "firmware"}, true, ""},
		{"auto with --firmware uefi", appGrubCfg(testArgs), with(nil), Options{Firmware: "uefi"}, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := directPlan(t, testDisk(t, c.cfg, c.files), c.o, "kvm")
			if c.meta {
				p.meta = &diskmeta.Meta{Mode: "app"}
			}
			p.planBoot(context.Background())
			if p.direct != nil {
				t.Fatalf("started directly: %+v", p.direct)
			}
			notes := strings.Join(p.notes, "\n")
			if c.note == "" && notes != "" || c.note != "" && !strings.Contains(notes, "c2vm: note: booting through the firmware: ") || !strings.Contains(notes, c.note) {
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
		})
	}
}

// lowInitrdMax is kernel bz whose header takes an initramfs of at most 16
// bytes.
func lowInitrdMax(bz string) string {
	k := []byte(bz)
	binary.LittleEndian.PutUint32(k[0x22C:], 0x10)
	return string(k)
}

// TestDirectBootNotC2VMDisk: a disk without c2vm's layout boots through
// its firmware, silently unless the direct boot was asked for.
func TestDirectBootNotC2VMDisk(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "mbr.img")
	mbr := make([]byte, 4<<20)
	mbr[510], mbr[511] = 0x55, 0xAA
	os.WriteFile(disk, mbr, 0o644)
	for _, boot := range []string{"auto", "kernel"} {
		p := directPlan(t, disk, Options{Boot: boot}, "tcg")
		p.planBoot(context.Background())
		if notes := strings.Join(p.notes, "\n"); p.direct != nil || (boot == "kernel") != strings.Contains(notes, "no GPT partition table") {
			t.Errorf("--boot %s: direct %v, notes %q", boot, p.direct, notes)
		}
	}
}

// TestDirectBootSystemOnRequest: --boot kernel starts a system disk's
// distribution links, followed inside its filesystem (".." stops at its
// root), with the guest's boot.env words last.
func TestDirectBootSystemOnRequest(t *testing.T) {
	bz := string(testBzImage(testVmlinux(true)))
	files := map[string]testEntry{
		"vmlinuz":             {link: "boot/vmlinuz-1.0"},
		"initrd.img":          {link: "../../../boot/initrd.img-1.0"},
		"boot/vmlinuz-1.0":    {data: bz},
		"boot/initrd.img-1.0": {data: "system initramfs"},
		"etc/c2vm/boot.env":   {data: "# GRUB Environment Block\nc2vm_cmdline=console=hvc0 \tnosmt\nc2vm_menu=\n####"},
	}
	disk := testDisk(t, systemGrubCfg(testArgs), files)
	p := directPlan(t, disk, Options{Boot: "kernel"}, "kvm")
	p.planBoot(context.Background())
	d := p.direct
	if d == nil {
		t.Fatalf("no direct boot: %q", p.notes)
	}
	if !strings.HasSuffix(d.cmdline, " panic=-1 cryptomgr.notests console=hvc0 nosmt") || readStoreFile(t, d.initrd) != "system initramfs" || readStoreFile(t, d.kernel) != bz {
		t.Errorf("command line %q, initramfs %q", d.cmdline, readStoreFile(t, d.initrd))
	}
	files["vmlinuz"] = testEntry{link: "/../../../host/vmlinuz"}
	p = directPlan(t, testDisk(t, systemGrubCfg(testArgs), files), Options{Boot: "kernel"}, "kvm")
	p.planBoot(context.Background())
	if notes := strings.Join(p.notes, "\n"); p.direct != nil || !strings.Contains(notes, "/boot/vmlinuz: no such file") {
		t.Errorf("a link to /host/vmlinuz: direct %v, notes %q", p.direct, notes)
	}
}

// TestDirectBootFilesKept: a second run of the same disk takes the files
// the first made; a changed disk, or an older recipe, makes them again.
func TestDirectBootFilesKept(t *testing.T) {
	disk := testDisk(t, appGrubCfg(testArgs), appFiles(testBzImage(testVmlinux(true)), testInitramfs()))
	p := directPlan(t, disk, Options{}, "tcg")
	ino := func(name string) uint64 {
		fi, err := os.Stat(filepath.Join(p.work, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	plan := func() {
		p.direct, p.notes = nil, nil
		p.planBoot(context.Background())
		if p.direct == nil {
			t.Fatalf("no direct boot: %q", p.notes)
		}
	}
	plan()
	first := []uint64{ino(bootKernelFile), ino(bootVmlinuxFile), ino(bootSlimFile)}
	plan()
	if again := []uint64{ino(bootKernelFile), ino(bootVmlinuxFile), ino(bootSlimFile)}; again[0] != first[0] || again[1] != first[1] || again[2] != first[2] {
		t.Errorf("files made again for the same disk: %v, then %v", first, again)
	}
	p.id.MTime++
	plan()
	if ino(bootKernelFile) == first[0] || ino(bootVmlinuxFile) == first[1] {
		t.Error("files kept for a changed disk")
	}
}

func TestCheckBoot(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Boot: "kernel", Firmware: "uefi"}, "--boot kernel starts the kernel without"},
		{Options{Boot: "grub"}, `unknown boot path "grub"`},
	} {
		mustUserErr(t, checkBoot(c.o), c.want)
	}
	for _, ok := range []Options{{}, {Boot: "auto", Firmware: "bios"}, {Boot: "firmware", Firmware: "uefi"}, {Boot: "kernel", Firmware: "auto"}} {
		if err := checkBoot(ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// TestDirectBootNoPVH: a kernel with no PVH entry starts as the bzImage it
// is, without a note, and later runs do not try again.
func TestDirectBootNoPVH(t *testing.T) {
	disk := testDisk(t, appGrubCfg(testArgs), appFiles(testBzImage(testVmlinux(false)), testInitramfs()))
	p := directPlan(t, disk, Options{}, "tcg")
	p.planBoot(context.Background())
	if d := p.direct; d == nil || d.kernel != filepath.Join(p.work, bootKernelFile) || len(p.notes) != 1 {
		t.Fatalf("direct %+v, notes %q", d, p.notes)
	}
	if rec := (bootStore{root: p.workRoot, dir: p.work}).record(); rec == nil || rec.Vmlinux != derivedNone {
		t.Errorf("record %+v", rec)
	}
}
