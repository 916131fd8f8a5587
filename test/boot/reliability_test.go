//go:build boot

package boot

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/powercut"
)

// TestParallelAssemblies runs four c2vm assemble at once over the same
// tree, sharing one empty GRUB image cache: every disk is the disk an
// assembly alone writes, byte for byte, and the cache ends with one whole
// image per platform and no temporary file (each run makes the images,
// and the last rename wins).
func TestParallelAssemblies(t *testing.T) {
	_, tarball := fixture(t)
	cache := ownedDir(t, "cache")
	env := []string{"SOURCE_DATE_EPOCH=1700000000", "XDG_CACHE_HOME=" + cache}
	outs := make([]string, 4)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range outs {
		outs[i] = outDir(t, fmt.Sprintf("out%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			assemble(t, env, "-q", "-o", outs[i], tarball)
		}()
	}
	wg.Wait()
	together := time.Since(start)
	if t.Failed() {
		return
	}
	alone := outDir(t, "alone")
	start = time.Now()
	assemble(t, env, "-q", "-o", alone, tarball)
	t.Logf("FIGURE four assemblies at once, one cache: %s wall; one alone: %s", together.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	want := sha(t, filepath.Join(alone, "linux.img"))
	for _, o := range outs {
		if got := sha(t, filepath.Join(o, "linux.img")); got != want {
			t.Errorf("%s: disk %s, alone %s", o, got, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(cache, "c2vm", "grub", "*"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if len(files) != 2 || strings.Contains(strings.Join(names, " "), ".tmp-") {
		t.Errorf("the GRUB cache holds %v; want one image per platform", names)
	}
	fsck(t, filepath.Join(outs[0], "linux.img"))
	if out, err := exec.Command("e2fsck", "-fn", rootFS(t, filepath.Join(alone, "linux.img"))).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
}

// ownedDir is a directory of the user assemble runs as (nobody, under
// root), that no one else may write: what c2vm asks of its cache.
func ownedDir(t *testing.T, name string) string {
	d := filepath.Join(outDir(t, name), "home")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// overlayFsck checks the root filesystem of a VM's overlay with e2fsck
// -fn, through a raw copy (e2fsck reads no qcow2).
func overlayFsck(t *testing.T, name string) {
	t.Helper()
	overlay := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm", "vms", name, "overlay.qcow2")
	raw := filepath.Join(outDir(t, "fsck"), "raw.img")
	if b, err := exec.Command("qemu-img", "convert", "-O", "raw", overlay, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	fsck(t, raw)
}

// TestPowerCutsFirstBoot cuts the power of a VM during its first boot, when
// the root grows and systemd sets the machine up, several times on the
// same overlay: the next boot completes with no failed unit, the root
// filesystem fills the disk once and e2fsck finds it clean after a clean
// power-off. make test cuts twice, make test-reliability ten times.
func TestPowerCutsFirstBoot(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	disk := filepath.Join(out, "linux.img")
	cuts := 2
	if os.Getenv("C2VM_RELIABILITY") != "" {
		cuts = 10
	}
	powercut.Cuts(t, c2vm, "cut", disk, cuts, powercut.FirstBoot)
	m := bootMarker(t, nil, disk, "bios", "--name", "cut")
	if m["failed"] != "none" {
		t.Errorf("after %d power cuts: failed units %s", cuts, m["failed"])
	}
	checkFills(t, fmt.Sprintf("after %d power cuts", cuts), m, 8<<30)
	overlayFsck(t, "cut")
}
