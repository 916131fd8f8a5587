//go:build boot

package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	if t.Failed() {
		return
	}
	alone := outDir(t, "alone")
	assemble(t, env, "-q", "-o", alone, tarball)
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

// powerCuts boots the named VM of disk n times and kills its QEMU (SIGKILL,
// as a host losing power) at a random moment of the first boot, between
// 3 s and about when the guest reaches its marker. It returns the state
// directory, where the VM's overlay is.
func powerCuts(t *testing.T, name, disk string, n int, flags ...string) {
	t.Helper()
	state := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm", "vms", name)
	for i := range n {
		cmd := exec.Command(c2vm, append(append([]string{"run", "--name", name, "--timeout", "10m"}, flags...), disk)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		at := time.Duration(3000+rand.IntN(27000)) * time.Millisecond
		pid := 0
		for deadline := time.Now().Add(at); time.Now().Before(deadline) || pid == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline.Add(time.Minute)) {
				cmd.Process.Kill()
				t.Fatalf("cut %d: no QEMU in %s\n%s", i+1, state, tail(out.String(), 2000))
			}
			var st struct {
				QEMUPID int `json:"qemuPid"`
			}
			if b, err := os.ReadFile(filepath.Join(state, "state.json")); err == nil && json.Unmarshal(b, &st) == nil {
				pid = st.QEMUPID
			}
		}
		syscall.Kill(pid, syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Errorf("cut %d at %s: c2vm run ended with %v, want exit 137 for a hard power-off\n%s", i+1, at, err, tail(out.String(), 1500))
		}
		t.Logf("cut %d at %s", i+1, at)
	}
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
	powerCuts(t, "cut", disk, cuts)
	m := bootMarker(t, nil, disk, "bios", "--name", "cut")
	if m["failed"] != "none" {
		t.Errorf("after %d power cuts: failed units %s", cuts, m["failed"])
	}
	checkFills(t, fmt.Sprintf("after %d power cuts", cuts), m, 8<<30)
	overlayFsck(t, "cut")
}
