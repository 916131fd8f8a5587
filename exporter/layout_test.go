package exporter

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
)

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
		fs, _ := disk.ParseFormats(name)
		f := fs[1]
		if err := Convert(context.Background(), dir, f, "linux.img", f.File, disk.MinVirtualSize); err != nil {
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
		if grown := info.VirtualSize == disk.MinVirtualSize; grown != f.Sparse() {
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
