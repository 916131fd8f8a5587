package vmrun

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// overlayInfo is what qemu-img says of a VM's overlay.
type overlayInfo struct {
	VirtualSize   int64  `json:"virtual-size"`
	Format        string `json:"format"`
	Backing       string `json:"backing-filename"`
	BackingFormat string `json:"backing-filename-format"`
}

func vmOverlayInfo(t *testing.T, name string) overlayInfo {
	t.Helper()
	p := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms", name, overlayFile)
	out, err := exec.Command("qemu-img", "info", "--output=json", "-U", p).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", p, err)
	}
	var info overlayInfo
	json.Unmarshal(out, &info)
	return info
}

// A run without --snapshot boots an overlay in the VM's state directory,
// whose backing file is the disk by absolute path with its format named
// (never probed), at the size the run prints; the disk, raw or qcow2, is
// left byte for byte as it was. The next run of the same disk continues
// the same overlay.
func TestOverlayLeavesDisk(t *testing.T) {
	needTool(t, "qemu-img")
	for _, format := range []string{"raw", "qcow2"} {
		o := fakeRun(t, "console", "reboot: Power down\r\n", "")
		if format == "qcow2" {
			qcow := strings.TrimSuffix(o.Disk, ".img") + ".qcow2"
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", o.Disk, qcow)
			o.Disk = qcow
		}
		before := fileDigest(t, o.Disk)
		var errOut buffer
		o.Stderr = &errOut
		if err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		name := derivedName(o.Disk)
		info := vmOverlayInfo(t, name)
		if info.Format != "qcow2" || info.Backing != o.Disk || info.BackingFormat != format || info.VirtualSize != 8<<30 {
			t.Errorf("%s: overlay %+v", format, info)
		}
		if !strings.Contains(errOut.String(), "VM "+name+": new, on a 8G overlay") || !strings.Contains(errOut.String(), "c2vm rm "+name+" starts over") {
			t.Errorf("%s: no note of the new VM:\n%s", format, errOut.String())
		}
		if fileDigest(t, o.Disk) != before {
			t.Errorf("%s: the run changed the disk", format)
		}
		errOut = buffer{}
		if err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), "VM "+name+" continues from its last run, on its 8G overlay") {
			t.Errorf("%s: the second run did not continue:\n%s", format, errOut.String())
		}
		if fileDigest(t, o.Disk) != before {
			t.Errorf("%s: the second run changed the disk", format)
		}
	}
}

// A guest's write reaches the overlay and the next run boots it.
func TestOverlayKeepsWrites(t *testing.T) {
	needTool(t, "qemu-io")
	o := fakeRun(t, "console", "", "")
	o.Name = "keep"
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms/keep", overlayFile)
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 4k", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v %s", err, out)
	}
	o.DiskSize = "16G"
	var errOut buffer
	o.Stderr = &errOut
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "read -P 0xab 1M 4k", overlay).CombinedOutput(); err != nil || bytes.Contains(out, []byte("Pattern verification failed")) {
		t.Errorf("the guest's write is gone: %v %s", err, out)
	}
	if !strings.Contains(errOut.String(), "16G overlay (grown from 8G by --disk-size)") || vmOverlayInfo(t, "keep").VirtualSize != 16<<30 {
		t.Errorf("overlay not grown:\n%s", errOut.String())
	}
}

// A disk that changed since its VM's overlay was made: an unnamed VM starts
// afresh and says so; a named one is refused with how to start over.
func TestDiskChanged(t *testing.T) {
	needTool(t, "qemu-img")
	o := fakeRun(t, "console", "", "")
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	named := o
	named.Name = "web"
	if err := Run(context.Background(), named); err != nil {
		t.Fatal(err)
	}
	// A rebuild writes a new file in the disk's place.
	b, _ := os.ReadFile(o.Disk)
	os.Remove(o.Disk)
	os.WriteFile(o.Disk, b, 0o644)
	var errOut buffer
	o.Stderr = &errOut
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	name := derivedName(o.Disk)
	if !strings.Contains(errOut.String(), "changed since VM "+name+" was made from it: starting the VM afresh") || !strings.Contains(errOut.String(), "VM "+name+": new") {
		t.Errorf("no fresh start:\n%s", errOut.String())
	}
	err := Run(context.Background(), named)
	mustUserErr(t, err, "changed since VM web was made from it")
	if !strings.Contains(err.Error(), "c2vm rm web") {
		t.Errorf("no way out: %v", err)
	}
	// Another disk under a name in use is refused too.
	other := filepath.Join(t.TempDir(), "other.img")
	os.WriteFile(other, b, 0o644)
	named.Disk = other
	mustUserErr(t, Run(context.Background(), named), "VM web was made from "+o.Disk)
}

// --in-place writes the disk (grown to --disk-size) and warns; --snapshot
// throws its overlay away. Unnamed, neither keeps any state.
func TestInPlaceAndSnapshot(t *testing.T) {
	needTool(t, "qemu-img")
	o := fakeRun(t, "console", "", "")
	t.Setenv("TMPDIR", t.TempDir())
	var errOut buffer
	o.Stderr, o.InPlace, o.DiskSize = &errOut, true, "64M"
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(o.Disk); fi.Size() != 64<<20 || !strings.Contains(errOut.String(), "warning: --in-place") || !strings.Contains(errOut.String(), "do not upload it as an image") {
		t.Errorf("in place: size %d\n%s", fi.Size(), errOut.String())
	}
	before := fileDigest(t, o.Disk)
	o.InPlace, o.Snapshot = false, true
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if fileDigest(t, o.Disk) != before {
		t.Error("--snapshot changed the disk")
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm")); err == nil {
		t.Error("unnamed --in-place or --snapshot runs kept state")
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	o.InPlace = true
	mustUserErr(t, Run(context.Background(), o), "--snapshot and --in-place contradict each other")
	// A VM with an overlay is not run beside it.
	o.InPlace, o.Snapshot, o.Name = false, false, "vm"
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o.Snapshot = true
	mustUserErr(t, Run(context.Background(), o), "VM vm keeps its guest's writes in an overlay of its disk, which --snapshot would leave aside")
}
