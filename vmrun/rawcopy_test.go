package vmrun

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRawContentsBounded: a compressed qcow2 whose data is many times its
// file is not copied out raw; within the bound it is, whole.
func TestRawContentsBounded(t *testing.T) {
	needTool(t, "qemu-img")
	dir := t.TempDir()
	raw, qcow := filepath.Join(dir, "a.raw"), filepath.Join(dir, "a.qcow2")
	data := bytes.Repeat([]byte("A"), 8<<20)
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, b)
	}
	defer func(floor int64) { rawCopyFloor = floor }(rawCopyFloor)
	rawCopyFloor = 1 << 20
	if _, err := rawContents(context.Background(), qcow, "qcow2", t.TempDir()); err == nil || !strings.Contains(err.Error(), "too much to copy") {
		t.Errorf("8 MiB of data in a small qcow2, 1 MiB allowed: %v", err)
	}
	rawCopyFloor = 16 << 20
	f, err := rawContents(context.Background(), qcow, "qcow2", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := io.ReadAll(f); !bytes.Equal(got, data) {
		t.Errorf("the raw copy differs from the disk (%d bytes)", len(got))
	}
}
