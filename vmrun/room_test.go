package vmrun

import (
	"context"
	"os"
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

// With --snapshot the guest boots a qcow2 overlay of the size in the run's
// directory and the disk is left alone; with --in-place a raw disk grows in
// place, sparse; a larger disk is kept.
func TestRoom(t *testing.T) {
	needTool(t, "qemu-img")
	ctx := context.Background()
	disk := filepath.Join(t.TempDir(), "linux.img")
	os.WriteFile(disk, []byte("data"), 0o644)
	os.Truncate(disk, 100<<20)
	p := &plan{o: Options{Disk: disk, Snapshot: true}, work: t.TempDir(), image: diskImage{Format: "raw"}}
	note, err := p.planDrive(ctx, 1<<30)
	if err != nil || filepath.Base(p.drive) != "overlay.qcow2" || p.driveFormat != "qcow2" || !strings.Contains(note, "1G disk (the disk's 100M, grown by --disk-size)") {
		t.Fatalf("snapshot: %s %q %v", p.drive, note, err)
	}
	if size, _ := virtualSize(ctx, p.drive, "qcow2"); size != 1<<30 {
		t.Errorf("overlay of %d bytes", size)
	}
	if fi, _ := os.Stat(disk); fi.Size() != 100<<20 {
		t.Error("--snapshot changed the disk")
	}
	p.o.Snapshot, p.o.InPlace = false, true
	note, err = p.planDrive(ctx, 1<<30)
	fi, _ := os.Stat(disk)
	if err != nil || p.drive != disk || p.driveFormat != "raw" || fi.Size() != 1<<30 || !strings.Contains(note, "grew linux.img from 100M to 1G") {
		t.Fatalf("grow: %s %q %v size %d", p.drive, note, err, fi.Size())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Blocks*512 > 1<<20 {
		t.Errorf("growing wrote %d bytes", st.Blocks*512)
	}
	if note, _ := p.planDrive(ctx, 512<<20); strings.Contains(note, "grew") {
		t.Errorf("a larger disk was touched: %q", note)
	}
}
