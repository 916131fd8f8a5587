package vmrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseDiskSize(t *testing.T) {
	for in, want := range map[string]int64{"keep": 0, "0": 0, "8G": 8 << 30, "1.5G": 3 << 29, "100MiB": 100 << 20} {
		if got, err := parseDiskSize(in); err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"big", "-1G", "1M", "100T", "nan", "8G,x"} {
		if _, err := parseDiskSize(bad); err == nil || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A raw disk grows in place, sparse; with --snapshot a qcow2 overlay of
// the size is booted and the disk is left alone; a larger disk is kept.
func TestRoom(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	disk := filepath.Join(t.TempDir(), "linux.img")
	os.WriteFile(disk, []byte("data"), 0o644)
	os.Truncate(disk, 100<<20)
	p := &plan{o: Options{Disk: disk, Snapshot: true}, work: t.TempDir(), image: diskImage{Format: "raw"}}
	got, note, err := p.room(ctx, 1<<30)
	if err != nil || filepath.Base(got) != "overlay.qcow2" || !strings.Contains(note, "1G disk (was 100M") {
		t.Fatalf("snapshot: %s %q %v", got, note, err)
	}
	if size, _ := virtualSize(ctx, got, "qcow2"); size != 1<<30 {
		t.Errorf("overlay of %d bytes", size)
	}
	if fi, _ := os.Stat(disk); fi.Size() != 100<<20 {
		t.Error("--snapshot changed the disk")
	}
	p.o.Snapshot = false
	got, note, err = p.room(ctx, 1<<30)
	fi, _ := os.Stat(disk)
	if err != nil || got != disk || fi.Size() != 1<<30 || !strings.Contains(note, "grew linux.img from 100M to 1G") {
		t.Fatalf("grow: %s %q %v size %d", got, note, err, fi.Size())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Blocks*512 > 1<<20 {
		t.Errorf("growing wrote %d bytes", st.Blocks*512)
	}
	if _, note, _ := p.room(ctx, 512<<20); note != "" {
		t.Errorf("a larger disk was touched: %q", note)
	}
}
