package vmrun

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
)

// fatImage returns a FAT file system of kib KiB that mkfs.vfat made (with
// mkfsArgs, such as -F 32), holding the directories EFI and EFI/BOOT and
// an empty file named each of loaders in EFI/BOOT.
func fatImage(t testing.TB, kib int, mkfsArgs []string, loaders ...string) []byte {
	t.Helper()
	for _, tool := range []string{"mkfs.vfat", "mmd", "mcopy"} {
		if _, err := hosttools.Look(tool); err != nil {
			if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
	dir := t.TempDir()
	img, empty := filepath.Join(dir, "esp.img"), filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	run := func(name string, args ...string) {
		t.Helper()
		if err := hosttools.Run(context.Background(), nil, nil, name, args...); err != nil {
			t.Fatal(err)
		}
	}
	run("mkfs.vfat", append(append([]string{"-C"}, mkfsArgs...), img, strconv.Itoa(kib))...)
	run("mmd", "-i", img, "::EFI", "::EFI/BOOT")
	for _, l := range loaders {
		run("mcopy", "-i", img, empty, "::EFI/BOOT/"+l)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// espDisk writes a GPT disk whose partition 1, at 1 MiB, is an ESP
// holding fat (and, with bios, a BIOS boot partition after it).
func espDisk(t *testing.T, fat []byte, bios bool) string {
	t.Helper()
	needTool(t, "sfdisk")
	script := "label: gpt\nstart=2048, size=" + strconv.Itoa(len(fat)/512) + ", type=" + typeESP + "\n"
	if bios {
		script += "size=1MiB, type=" + typeBIOSBoot + "\n"
	}
	disk := filepath.Join(t.TempDir(), "linux.img")
	os.WriteFile(disk, nil, 0o644)
	os.Truncate(disk, int64(len(fat))+4<<20)
	if err := hosttools.Run(context.Background(), []byte(script), nil, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(fat, 1<<20); err != nil {
		t.Fatal(err)
	}
	return disk
}

// archOf tells a disk's arch as inspect does, from its headers and first
// sectors.
func archOf(t *testing.T, disk string) (string, bool) {
	t.Helper()
	img, err := inspectDisk(disk, false)
	if err != nil {
		t.Fatal(err)
	}
	head, err := readHead(context.Background(), disk, img.Format)
	if err != nil {
		t.Fatal(err)
	}
	return archFromDisk(context.Background(), disk, img.Format, head)
}

func TestArchFromDisk(t *testing.T) {
	for _, c := range []struct {
		name    string
		kib     int
		mkfs    []string
		loaders []string
		bios    bool
		want    string // "" cannot tell
	}{
		{"arm64, FAT32 as c2vm writes it", 40 << 10, []string{"-F", "32"}, []string{"BOOTAA64.EFI", "grubaa64.efi"}, false, archARM64},
		{"amd64, FAT32", 40 << 10, []string{"-F", "32"}, []string{"BOOTX64.EFI", "grubx64.efi", "mmx64.efi"}, false, archAMD64},
		{"both loaders", 40 << 10, []string{"-F", "32"}, []string{"BOOTAA64.EFI", "BOOTX64.EFI"}, false, archAMD64},
		{"arm64, FAT16", 16 << 10, []string{"-F", "16"}, []string{"BOOTAA64.EFI"}, false, archARM64},
		// Larger than what is copied out of a qcow2: Ubuntu's ESP is 106 MiB.
		{"arm64, FAT32 of 106 MiB", 106 << 10, []string{"-F", "32"}, []string{"BOOTAA64.EFI"}, false, archARM64},
		{"arm64, FAT12", 1 << 10, []string{"-F", "12"}, []string{"BOOTAA64.EFI"}, false, archARM64},
		{"no loader", 2 << 10, nil, nil, false, ""},
		{"BIOS boot partition", 2 << 10, nil, []string{"BOOTAA64.EFI"}, true, archAMD64},
	} {
		t.Run(c.name, func(t *testing.T) {
			disk := espDisk(t, fatImage(t, c.kib, c.mkfs, c.loaders...), c.bios)
			for _, format := range []string{"raw", "qcow2"} {
				d := converted(t, disk, format)
				if arch, ok := archOf(t, d); arch != c.want || ok != (c.want != "") {
					t.Errorf("%s: %q %v, want %q", format, arch, ok, c.want)
				}
			}
		})
	}
}

// A disk without c2vm.json boots as its ESP says, and with one the file
// decides.
func TestResolveArch(t *testing.T) {
	disk := espDisk(t, fatImage(t, 2<<10, nil, "BOOTAA64.EFI"), false)
	head, err := readHead(context.Background(), disk, "raw")
	if err != nil {
		t.Fatal(err)
	}
	p := &plan{o: Options{Disk: disk}, image: diskImage{Format: "raw"}, head: head}
	if a := p.resolveArch(context.Background()); a != archARM64 {
		t.Errorf("ESP with BOOTAA64.EFI: %s", a)
	}
	p.o.Arch = "amd64"
	if a := p.resolveArch(context.Background()); a != archAMD64 {
		t.Errorf("--arch amd64: %s", a)
	}
	p.o.Arch = "auto"
	p.meta = &diskmeta.Meta{Firmware: "uefi"}
	if a := p.resolveArch(context.Background()); a != archAMD64 {
		t.Errorf("c2vm.json without arch: %s", a)
	}
	p.meta, p.head = nil, nil
	if a := p.resolveArch(context.Background()); a != archAMD64 {
		t.Errorf("unreadable disk: %s", a)
	}
}

// Broken FATs are no answer, never a hang or a crash.
func TestFallbackLoadersHostile(t *testing.T) {
	good := fatImage(t, 40<<10, []string{"-F", "32"}, "BOOTAA64.EFI")
	if files, err := fallbackLoaders(bytes.NewReader(good), int64(len(good))); err != nil || !files["BOOTAA64EFI"] {
		t.Fatalf("good FAT32: %v %v", files, err)
	}
	v, err := openFAT(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	root := v.fatStart + 4*int64(v.rootCluster)
	for name, b := range map[string][]byte{
		// The root directory's chain loops on itself.
		"loop": mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[root:], v.rootCluster) }),
		// Its root cluster is beyond the volume.
		"root beyond": mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[44:], 0x0FFFFFF0) }),
		// The boot sector claims more sectors than the partition has.
		"too many sectors": mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[32:], 0xFFFFFFFF) }),
		"no signature":     mutate(func(b []byte) { b[510] = 0 }),
		"zero sector size": mutate(func(b []byte) { b[11], b[12] = 0, 0 }),
		"truncated":        good[:len(good)/2],
		"short":            good[:100],
		"empty":            nil,
	} {
		if files, err := fallbackLoaders(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%s: %v, want an error", name, files)
		}
	}
}

func FuzzFallbackLoaders(f *testing.F) {
	f.Add(fatImage(f, 256, []string{"-F", "12"}, "BOOTAA64.EFI"))
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, b []byte) {
		fallbackLoaders(bytes.NewReader(b), int64(len(b)))
	})
}
