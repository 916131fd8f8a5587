package vmrun

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
)

// needTool skips a test without a host tool, unless C2VM_REQUIRE_TOOLS
// says every tool must be there.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := hosttools.Look(name); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestGUIDString(t *testing.T) {
	// The BIOS boot partition's GUID spells this on disk.
	if got := guidString([]byte("Hah!IdontNeedEFI")); got != typeBIOSBoot {
		t.Errorf("got %s", got)
	}
}

// partitioned writes an 8 MiB disk partitioned by sfdisk from script.
func partitioned(t *testing.T, script string, sfdiskArgs ...string) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "linux.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<20); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--quiet", "--no-reread", "--no-tell-kernel"}, sfdiskArgs...)
	if err := hosttools.Run(context.Background(), []byte(script), nil, "sfdisk", append(args, disk)...); err != nil {
		t.Fatal(err)
	}
	return disk
}

const (
	biosBoot = "size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n"
	esp      = "size=2MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
	rootPart = "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n"
)

func TestFirmwareFromPartitionTable(t *testing.T) {
	needTool(t, "sfdisk")
	for _, tc := range []struct {
		name, script string
		args         []string
		bootCode     bool
		want         string // "" cannot tell
	}{
		{"hybrid", "label: gpt\n" + biosBoot + esp + rootPart, nil, true, "bios"},
		{"bios-only", "label: gpt\n" + biosBoot + rootPart, nil, true, "bios"},
		{"uefi-only", "label: gpt\n" + esp + rootPart, nil, false, "uefi"},
		{"gpt, neither", "label: gpt\n" + rootPart, nil, false, ""},
		{"gpt, neither, MBR boot code", "label: gpt\n" + rootPart, nil, true, "bios"},
		{"mbr", "label: dos\ntype=83, bootable\n", nil, true, "bios"},
		{"mbr with an EFI partition only", "label: dos\ntype=ef\n", nil, false, "uefi"},
		{"mbr, no boot code", "label: dos\ntype=83\n", nil, false, ""},
	} {
		disk := partitioned(t, tc.script, tc.args...)
		if tc.bootCode {
			f, _ := os.OpenFile(disk, os.O_WRONLY, 0)
			f.WriteAt([]byte{0xEB, 0x63, 0x90}, 0) // a jump, as boot code starts
			f.Close()
		}
		for _, format := range []string{"raw", "qcow2", "vpc"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				d := converted(t, disk, format)
				fw, err := firmwareOf(context.Background(), d, "auto", nil)
				switch {
				case tc.want == "" && (err == nil || !strings.Contains(err.Error(), "pass --firmware bios or --firmware uefi")):
					t.Errorf("want a cannot-tell error, got %q %v", fw, err)
				case tc.want != "" && (err != nil || fw != tc.want):
					t.Errorf("got %q %v, want %s", fw, err, tc.want)
				}
			})
		}
	}
}

// converted returns disk in format, converted with qemu-img beside a
// c2vm-like name.
func converted(t *testing.T, disk, format string) string {
	if format == "raw" {
		return disk
	}
	needTool(t, "qemu-img")
	ext := map[string]string{"vpc": "vhd"}[format]
	if ext == "" {
		ext = format
	}
	out := filepath.Join(t.TempDir(), "linux."+ext)
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", format, disk, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v %s", err, b)
	}
	return out
}

func TestFirmwareFallbacks(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "linux.img")
	os.WriteFile(blank, make([]byte, 64<<10), 0o644)
	ctx := context.Background()
	if _, err := firmwareOf(ctx, blank, "", nil); err == nil || !strings.Contains(err.Error(), "fix: pass --firmware") {
		t.Errorf("blank disk: %v", err)
	}
	// c2vm.json speaks only when the table does not.
	for meta, want := range map[string]string{"hybrid": "bios", "bios": "bios", "uefi": "uefi"} {
		if fw, err := firmwareOf(ctx, blank, "auto", &diskmeta.Meta{Firmware: meta}); err != nil || fw != want {
			t.Errorf("c2vm.json %s: %q %v", meta, fw, err)
		}
	}
	// An explicit choice reads nothing.
	if fw, err := chooseFirmware("/nonexistent", nil, nil, "uefi", nil); err != nil || fw != "uefi" {
		t.Errorf("explicit: %q %v", fw, err)
	}
	// A format that cannot be read says why.
	bad := filepath.Join(t.TempDir(), "linux.qcow2")
	os.WriteFile(bad, []byte("not qcow2"), 0o644)
	badHead, err := readHead(ctx, bad, "qcow2")
	if _, err := chooseFirmware(bad, badHead, err, "auto", nil); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("broken qcow2: %v", err)
	}
	// 4 KiB sectors: the header is at 4096.
	head := make([]byte, 64<<10)
	head[446+4], head[510], head[511] = 0xEE, 0x55, 0xAA
	copy(head[4096:], "EFI PART")
	le64(head[4096+72:], 2)
	le64(head[4096+80:], 128|128<<32)
	copy(head[2*4096:], guidBytes(typeESP))
	if fw, ok := firmwareFromTable(head); !ok || fw != "uefi" {
		t.Errorf("4K-sector UEFI disk: %q %v", fw, ok)
	}
	copy(head[2*4096+128:], "Hah!IdontNeedEFI")
	if fw, ok := firmwareFromTable(head); !ok || fw != "bios" {
		t.Errorf("4K-sector hybrid disk: %q %v", fw, ok)
	}
	// Truncated and nonsensical tables are no answer, not a crash.
	for _, head := range [][]byte{nil, make([]byte, 512), gptHead(1<<40, 128, 128), gptHead(2, 1<<20, 128), gptHead(2, 128, 16)} {
		if fw, ok := firmwareFromTable(head); ok {
			t.Errorf("answer %q from a broken table", fw)
		}
	}
}

// gptHead is a protective MBR and a GPT header whose entries are described
// by the arguments, with no entries written.
func gptHead(entryLBA uint64, count, size uint32) []byte {
	b := make([]byte, 64<<10)
	b[446+4], b[510], b[511] = 0xEE, 0x55, 0xAA
	copy(b[512:], "EFI PART")
	le64(b[512+72:], entryLBA)
	le64(b[512+80:], uint64(count)|uint64(size)<<32)
	return b
}

// guidBytes is the on-disk form of a GUID.
func guidBytes(s string) []byte {
	h, _ := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	slices.Reverse(h[0:4])
	slices.Reverse(h[4:6])
	slices.Reverse(h[6:8])
	return h
}

func le64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// firmwareOf chooses the firmware as prepare does: the format from the
// disk's headers, then its first MiB.
func firmwareOf(ctx context.Context, disk, want string, meta *diskmeta.Meta) (string, error) {
	img, err := inspectDisk(disk, false)
	if err != nil {
		return "", err
	}
	head, err := readHead(ctx, disk, img.Format)
	return chooseFirmware(disk, head, err, want, meta)
}
