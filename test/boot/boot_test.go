//go:build boot

// Package boot holds the tests that assemble a real Debian tree and boot it
// in QEMU. They need the Debian tools (hack/deps) and the fixture tree
// (hack/fixture-tree, named by C2VM_FIXTURE); make test provides both.
package boot

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/testbin"
)

var (
	c2vm    string // the binary under test
	workDir string // world-readable, so an unprivileged user can run there
)

func TestMain(m *testing.M) {
	var cleanup func()
	c2vm, cleanup = testbin.Build("/var/tmp", "../../cmd/c2vm")
	workDir = filepath.Dir(c2vm)
	// c2vm run keeps each VM's overlay in the state directory: one of the
	// run's own, removed with the binary.
	os.Setenv("XDG_STATE_HOME", filepath.Join(workDir, "state"))
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// fixture is the cached debootstrap tree with its marker unit.
func fixture(t *testing.T) (dir, tarball string) {
	dir = os.Getenv("C2VM_FIXTURE")
	if dir == "" {
		t.Fatal("C2VM_FIXTURE is not set: run through make test, or set it to the output of hack/fixture-tree")
	}
	return dir, dir + ".tar"
}

// outDir makes an output directory an unprivileged user may write. It goes
// when the test ends: the disks of a whole run (formats included) would fill
// a CI machine's disk, and a later test would then fail for want of space.
// C2VM_KEEP_OUTPUT=1 keeps a failed test's outputs to look at.
func outDir(t *testing.T, name string) string {
	d := filepath.Join(workDir, t.Name()+"-"+name)
	os.RemoveAll(d)
	if err := os.MkdirAll(d, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o777)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("C2VM_KEEP_OUTPUT") == "1" {
			t.Logf("kept %s", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// assemble runs c2vm assemble; as root it drops to the nobody user first,
// so the test proves assembly needs no privilege.
func assemble(t *testing.T, env []string, args ...string) string {
	t.Helper()
	argv := append([]string{c2vm, "assemble"}, args...)
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		argv = append([]string{"setpriv", "--reuid=" + nobody.Uid, "--regid=" + nobody.Gid, "--clear-groups"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("assemble %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// marker boots a disk (the guest's writes discarded) and returns the facts
// the guest printed on its C2VM-MARKER line.
func marker(t *testing.T, disk, firmware string, flags ...string) map[string]string {
	t.Helper()
	return bootMarker(t, nil, disk, firmware, append([]string{"--snapshot"}, flags...)...)
}

// markerRun boots a disk with extra c2vm run flags, the guest's writes
// going into the disk itself (--in-place).
func markerRun(t *testing.T, disk, firmware string, flags ...string) map[string]string {
	t.Helper()
	return bootMarker(t, nil, disk, firmware, append([]string{"--in-place"}, flags...)...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func sha(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func owner(t *testing.T, p string) uint32 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

func TestBootBIOSAndUEFIUnprivileged(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	disk := filepath.Join(out, "linux.img")
	if os.Geteuid() == 0 && owner(t, disk) == 0 {
		t.Fatal("linux.img is owned by root: assembly did not run unprivileged")
	}
	for _, fw := range []string{"bios", "uefi"} {
		m := marker(t, disk, fw)
		if m["fw"] != fw || m["root"] != "/dev/vda3" || m["rw"] != "rw" {
			t.Errorf("%s boot facts: %v", fw, m)
		}
		// The journal directory's POSIX ACL, stored by our ext4 writer in
		// ext4's format, reads back in the guest; no unit failed.
		if m["journal_acl"] != "1" || m["failed"] != "none" {
			t.Errorf("%s: getfacl /var/log/journal found %s group:adm entries; failed units: %s", fw, m["journal_acl"], m["failed"])
		}
	}
}

// TestBootOCILayout boots an image of two layers whose second deletes a file
// with a whiteout and changes the marker script.
func TestBootOCILayout(t *testing.T) {
	dir, tarball := fixture(t)
	if _, err := os.Stat(filepath.Join(dir, "etc/motd")); err != nil {
		t.Fatalf("fixture lacks /etc/motd to delete: %v", err)
	}
	extended := markerWith(t, fixtureMarker(t), `motd=$(test -e /etc/motd && echo present || echo gone) layer2=$(cat /etc/c2vm-layer2)`)
	top := ocitest.NewTar().
		File("etc/.wh.motd", "", 0o644).
		File("etc/c2vm-layer2", "yes", 0o644).
		File("usr/local/sbin/c2vm-marker", extended, 0o755).Bytes()
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, layoutOver(t, tarball, top))
	m := marker(t, filepath.Join(out, "linux.img"), "uefi")
	if m["motd"] != "gone" || m["layer2"] != "yes" {
		t.Errorf("layers not applied: %v", m)
	}
}

// TestBootSizes checks the ways a root fills its disk: built at an explicit
// size, grown at first boot after the disk was enlarged by hand, and grown
// again when c2vm run gives it its default room.
func TestBootSizes(t *testing.T) {
	_, tarball := fixture(t)
	big := outDir(t, "big")
	assemble(t, nil, "-o", big, "--size", "3G", tarball)
	m := marker(t, filepath.Join(big, "linux.img"), "bios", "--disk-size", "keep")
	checkFills(t, "--size 3G", m, 3<<30)

	// An auto disk enlarged by 2 GiB grows at first boot (its writes kept),
	// boots again through GRUB on the grown filesystem, and is clean.
	auto := outDir(t, "auto")
	assemble(t, nil, "-o", auto, tarball)
	disk := filepath.Join(auto, "linux.img")
	fi, _ := os.Stat(disk)
	if out, err := exec.Command("qemu-img", "resize", "-q", "-f", "raw", disk, "+2G").CombinedOutput(); err != nil {
		t.Fatalf("resize: %v %s", err, out)
	}
	m = markerRun(t, disk, "uefi", "--disk-size", "keep")
	checkFills(t, "auto disk enlarged by 2G, first boot", m, fi.Size()+2<<30)
	// c2vm run's default room: the disk file grows to 8 GiB in place and the
	// root follows it, booting through GRUB on the twice-grown filesystem.
	m = markerRun(t, disk, "bios")
	checkFills(t, "the grown disk, second boot with c2vm run's default room", m, 8<<30)
	fsck(t, disk)
}

// fsck checks a disk's root filesystem with e2fsck -fn.
func fsck(t *testing.T, disk string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", rootFS(t, disk)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the guest ran: %v\n%s", err, out)
	}
}

// layoutOver makes an OCI layout of the fixture's tarball with a second
// layer, top, and returns its SOURCE spec.
func layoutOver(t *testing.T, tarball string, top []byte) string {
	t.Helper()
	topPath := filepath.Join(outDir(t, "top"), "top.tar")
	os.WriteFile(topPath, top, 0o644)
	layout := filepath.Join(outDir(t, "layout"), "oci")
	if err := ocitest.WriteLayoutFiles(layout, "latest", gzip.BestSpeed, tarball, topPath); err != nil {
		t.Fatal(err)
	}
	// go-containerregistry writes blobs readable by their owner only.
	if out, err := exec.Command("chmod", "-R", "a+rX", layout).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	return "oci-layout:" + layout + ":latest"
}

func checkFills(t *testing.T, what string, m map[string]string, disk int64) {
	t.Helper()
	got, _ := strconv.ParseInt(m["disk_bytes"], 10, 64)
	fs, _ := strconv.ParseInt(m["rootfs_bytes"], 10, 64)
	if got != disk {
		t.Errorf("%s: guest sees a %d byte disk, want %d", what, got, disk)
	}
	if float64(fs) < 0.93*float64(disk) {
		t.Errorf("%s: root filesystem is %d bytes on a %d byte disk: not grown", what, fs, disk)
	}
}

func TestReproducible(t *testing.T) {
	_, tarball := fixture(t)
	env := []string{"SOURCE_DATE_EPOCH=1700000000"}
	a, b := outDir(t, "a"), outDir(t, "b")
	assemble(t, env, "-o", a, tarball)
	assemble(t, env, "-o", b, tarball)
	ha, hb := sha(t, filepath.Join(a, "linux.img")), sha(t, filepath.Join(b, "linux.img"))
	if ha != hb {
		t.Fatalf("two assemblies differ: %s %s", ha, hb)
	}
	// A different input gets different ids.
	other := filepath.Join(workDir, "other.tar")
	copyAppend(t, tarball, other)
	c := outDir(t, "c")
	assemble(t, env, "-o", c, other)
	idA, idC := diskID(t, filepath.Join(a, "linux.img")), diskID(t, filepath.Join(c, "linux.img"))
	if idA == idC {
		t.Errorf("different inputs share the disk id %s", idA)
	}
}

// copyAppend copies a tar and adds one file to it.
func copyAppend(t *testing.T, src, dst string) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the end-of-archive blocks, then append an entry and new ones.
	end := len(b)
	for end >= 512 && allZero(b[end-512:end]) {
		end -= 512
	}
	extra := ocitest.NewTar().File("etc/extra", "different", 0o644).Bytes()
	os.WriteFile(dst, append(b[:end:end], extra...), 0o644)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func diskID(t *testing.T, disk string) string {
	out, err := exec.Command("sfdisk", "--disk-id", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestFormats converts one disk to every qemu-img format; raw is named,
// since naming formats writes only those.
func TestFormats(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--format", "raw,qcow2,vmdk,vhdx,vdi,vhd", tarball)
	raw := filepath.Join(out, "linux.img")
	for ext, qfmt := range map[string]string{"qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx", "vdi": "vdi", "vhd": "vpc"} {
		conv := filepath.Join(out, "linux."+ext)
		out, err := exec.Command("qemu-img", "compare", "-q", "-f", "raw", "-F", qfmt, raw, conv).CombinedOutput()
		if err != nil {
			t.Errorf("%s differs from the raw disk: %v %s", ext, err, out)
		}
	}
}

// TestStoppedRunLeavesNoDisk stops assembly midway: SIGTERM cleans up
// everything; SIGKILL, at 20 random points of the run, never leaves a
// linux.img (outputs appear by rename, linux.img last).
func TestStoppedRunLeavesNoDisk(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "SIGTERM")
	cmd := exec.Command(c2vm, "assemble", "-o", out, "--format", "raw,qcow2", tarball)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err == nil {
		t.Fatal("SIGTERM: assembly finished before the signal; cannot test")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("SIGTERM left %d entries, e.g. %s", len(entries), entries[0].Name())
	}
	// How long a whole run takes, to spread the kills over it.
	start := time.Now()
	full := outDir(t, "full")
	assemble(t, nil, "-o", full, "--format", "raw,qcow2", tarball)
	whole := time.Since(start)
	os.RemoveAll(full)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := range 20 {
		out := outDir(t, fmt.Sprintf("SIGKILL-%d", i))
		cmd := exec.Command(c2vm, "assemble", "-o", out, "--format", "raw,qcow2", tarball)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		at := time.Duration(r.Int63n(int64(whole)))
		time.Sleep(at)
		cmd.Process.Kill()
		finished := cmd.Wait() == nil
		_, img := os.Stat(filepath.Join(out, "linux.img"))
		_, qcow := os.Stat(filepath.Join(out, "linux.qcow2"))
		switch {
		case finished && (img != nil || qcow != nil):
			t.Errorf("kill %d at %s: the run finished but its outputs are missing", i, at)
		case !finished && img == nil:
			t.Errorf("kill %d at %s: linux.img exists after a killed run", i, at)
		}
		// A killed run leaves its scratch (up to a disk); twenty of them
		// would hold many GB until the test ends.
		os.RemoveAll(out)
	}
}

// TestFullOutputFilesystem assembles into a small tmpfs: one clear error,
// nothing left behind.
func TestFullOutputFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs in a private mount namespace")
	}
	_, tarball := fixture(t)
	dir := outDir(t, "tmpfs")
	script := `mount -t tmpfs -o size=100m tmpfs "$1" && "$2" assemble -o "$1/out" "$3"; rc=$?; ls -A "$1/out" 2>/dev/null; exit $rc`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dir, c2vm, tarball).CombinedOutput()
	s := string(out)
	if err == nil || strings.Count(s, "c2vm:") != 1 || !strings.Contains(s, "is full") || !strings.Contains(s, "fix:") {
		t.Fatalf("want one clear error about the full filesystem, got %v:\n%s", err, tail(s, 2000))
	}
	if lines := strings.Split(strings.TrimSpace(s[strings.LastIndex(s, "fix:"):]), "\n"); len(lines) > 1 {
		t.Errorf("left behind: %v", lines[1:])
	}
}
