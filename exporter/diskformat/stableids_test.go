package diskformat_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/diskformat"
	"github.com/c2vm/c2vm/internal/hosttools"
)

// needQemuImg skips a test without qemu-img, unless C2VM_REQUIRE_TOOLS
// says every tool must be there.
func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := hosttools.Look("qemu-img"); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

const testRawSize = 4 << 20

// writeTestRaw writes a small raw disk: a GPT header's signature and disk
// GUID (what c2vm seeds the identifiers with) and some data.
func writeTestRaw(t *testing.T, path string) {
	t.Helper()
	b := make([]byte, testRawSize)
	copy(b[512:], "EFI PART")
	copy(b[512+56:], "0123456789abcdef")
	for i := 1 << 20; i < 1<<20+64<<10; i++ {
		b[i] = byte(i * 7)
	}
	copy(b[3<<20:], "the end of the disk")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func qemuImg(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "qemu-img", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// convertCase makes dst from raw the way c2vm does: Commands (with a
// larger virtual size for the create-then-fill path), or for the OVA's
// VMDK, ConvertArgs.
type convertCase struct {
	name       string
	format     string
	minVirtual int64
}

func (c convertCase) make(t *testing.T, dir, raw, dst string) disk.Format {
	t.Helper()
	fs, err := disk.ParseFormats(c.format)
	if err != nil {
		t.Fatal(err)
	}
	f := disk.Outputs(fs)[0]
	if f.Make == disk.MakeOVA {
		qemuImg(t, dir, f.ConvertArgs(raw, dst)...)
		return f
	}
	for _, argv := range f.Commands(raw, dst, testRawSize, c.minVirtual) {
		qemuImg(t, dir, argv[1:]...)
	}
	return f
}

func TestStableIDs(t *testing.T) {
	needQemuImg(t)
	cases := []convertCase{
		{"vmdk", "vmdk", 0},
		{"vmdk-sized", "vmdk", 64 << 20},
		{"ova-vmdk", "ova", 0},
		{"vdi", "vdi", 0},
		{"vdi-sized", "vdi", 64 << 20},
		{"vhd", "vhd", 0},
		{"vhd-azure", "vhd-azure", 0},
		{"vhdx", "vhdx", 0},
		{"vhdx-sized", "vhdx", 64 << 20},
	}
	seedA, seedB := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	epoch := time.Unix(1700000000, 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTestRaw(t, filepath.Join(dir, "raw"))
			var f disk.Format
			var got [][]byte
			for _, name := range []string{"a", "b"} {
				// The same name twice: the VMDK descriptor holds it.
				f = c.make(t, dir, "raw", "out")
				path := filepath.Join(dir, "out")
				if err := diskformat.StableIDs(path, f.QemuFmt, seedA, &epoch); err != nil {
					t.Fatal(err)
				}
				check(t, dir, f, "out")
				if err := os.Rename(path, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				got = append(got, readFile(t, filepath.Join(dir, name)))
			}
			if !bytes.Equal(got[0], got[1]) {
				t.Fatalf("two conversions differ after StableIDs at byte %d", firstDiff(got[0], got[1]))
			}

			// Another seed gives other identifiers; the first seed again
			// gives back the same file.
			b := filepath.Join(dir, "b")
			if err := diskformat.StableIDs(b, f.QemuFmt, seedB, &epoch); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(readFile(t, b), got[0]) {
				t.Fatal("another seed gave the same file")
			}
			if err := diskformat.StableIDs(b, f.QemuFmt, seedA, &epoch); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, b), got[0]) {
				t.Fatal("seed A after seed B is not seed A's file")
			}

			if f.QemuFmt == "vpc" {
				// The footer's time stamp is the epoch.
				foot := got[0][len(got[0])-512:]
				if ts := binary.BigEndian.Uint32(foot[24:]); int64(ts) != 1700000000-946684800 {
					t.Errorf("VHD time stamp %d", ts)
				}
			}
		})
	}
}

// check runs qemu-img's own checks on a patched file: its consistency
// check where the format has one, and that it holds the raw disk's bytes.
func check(t *testing.T, dir string, f disk.Format, name string) {
	t.Helper()
	if f.QemuFmt != "vpc" { // qemu-img check does not support VHD
		qemuImg(t, dir, "check", "-q", "-f", f.QemuFmt, name)
	}
	qemuImg(t, dir, "compare", "-q", "-f", "raw", "-F", f.QemuFmt, "raw", name)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestStableIDsRefuses(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0x5a}, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, qf := range []string{"vmdk", "vdi", "vpc", "vhdx"} {
		if err := diskformat.StableIDs(junk, qf, []byte("seed"), nil); err == nil {
			t.Errorf("%s: no error for a file that is not one", qf)
		}
	}
	// Formats without identifiers are left alone.
	if err := diskformat.StableIDs(junk, "qcow2", []byte("seed"), nil); err != nil {
		t.Error(err)
	}
	if b := readFile(t, junk); !bytes.Equal(b, bytes.Repeat([]byte{0x5a}, 256<<10)) {
		t.Error("a refused file was changed")
	}
}

// qemu writes a VMDK's CID without leading zeros: a short one is replaced
// as a long one is.
func TestStableIDsShortCID(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	writeTestRaw(t, filepath.Join(dir, "raw"))
	f := convertCase{"vmdk", "vmdk", 0}.make(t, dir, "raw", "out")
	path := filepath.Join(dir, "out")
	b := readFile(t, path)
	i := bytes.Index(b, []byte("\nCID="))
	if i < 0 || i > 4096 {
		t.Fatal("no CID line")
	}
	// "CID=xxxxxxxx\n" (however long qemu wrote it) becomes "CID=1f\n",
	// the text moving up.
	text := b[512:][:bytes.IndexByte(b[512:], 0)]
	line := b[i+1 : i+2+bytes.IndexByte(b[i+1:], '\n')]
	short := bytes.Replace(text, line, []byte("CID=1f\n"), 1)
	copy(b[512:], short)
	clear(b[512+len(short) : 512+len(text)])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := diskformat.StableIDs(path, f.QemuFmt, []byte("seed"), nil); err != nil {
		t.Fatal(err)
	}
	check(t, dir, f, "out")
	// The same conversion, its CID as qemu wrote it, under the same name
	// (the descriptor holds it).
	got := readFile(t, path)
	convertCase{"vmdk", "vmdk", 0}.make(t, dir, "raw", "out")
	if err := diskformat.StableIDs(path, f.QemuFmt, []byte("seed"), nil); err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, path); !bytes.Equal(got, want) {
		t.Fatalf("a short CID gave another file, first difference at %d", firstDiff(got, want))
	}
}
