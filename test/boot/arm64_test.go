//go:build boot

package boot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// arm64 disks, assembled on this machine without emulation and booted on
// qemu-system-aarch64 -M virt with AAVMF under TCG (make test-arm64: they
// take several minutes each, so make test leaves them out).

// arm64Fixture is the arm64 Debian 12 tree (hack/fixture-tree arm64,
// C2VM_FIXTURE_ARM64).
func arm64Fixture(t *testing.T) (dir, tarball string) {
	dir = os.Getenv("C2VM_FIXTURE_ARM64")
	if dir == "" {
		t.Skip("C2VM_FIXTURE_ARM64 is not set: make test-arm64 runs these")
	}
	return dir, dir + ".tar"
}

// TestARM64SystemBoot assembles the arm64 Debian tree as an unprivileged
// user and boots it: the guest reports UEFI, its root on the disk's second
// partition (no BIOS boot partition), its arm64 kernel, and no failed unit.
func TestARM64SystemBoot(t *testing.T) {
	_, tarball := arm64Fixture(t)
	out := outDir(t, "out")
	start := time.Now()
	assemble(t, nil, "--arch", "arm64", "-o", out, tarball)
	t.Logf("assembled in %s", time.Since(start).Round(time.Second))
	disk := filepath.Join(out, "linux.img")
	meta, err := diskmeta.ForDisk(disk)
	if err != nil || meta == nil || meta.Arch != "arm64" || meta.Firmware != "uefi" {
		t.Fatalf("c2vm.json: %+v, %v", meta, err)
	}
	m := bootMarker(t, nil, disk, "uefi", "--snapshot", "--timeout", "900s")
	if m["fw"] != "uefi" || m["root"] != "/dev/vda2" || m["rw"] != "rw" || !strings.HasSuffix(m["kernel"], "-arm64") {
		t.Errorf("arm64 boot facts: %v", m)
	}
	if m["failed"] != "none" {
		t.Errorf("failed units: %s\n%s", m["failed"], tail(m["c2vm-output"], 3000))
	}
	// c2vm run's 8 GiB: the arm64 root type let systemd-repart grow it.
	if root, _ := strconv.ParseInt(m["rootfs_bytes"], 10, 64); m["disk_bytes"] != "8589934592" || root < 7<<30 {
		t.Errorf("the root did not grow to the 8 GiB disk: %v", m)
	}
}

// TestARM64AppMode runs a static arm64 Go program, the only file of its
// image, with the arm64 kernel of the fixture and c2vm's init built for
// arm64; c2vm run returns its exit code.
func TestARM64AppMode(t *testing.T) {
	kernels, _ := arm64Fixture(t)
	work := t.TempDir()
	src := filepath.Join(work, "prog.go")
	os.WriteFile(src, []byte(`package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Printf("C2VM-APP arch=%s args=%v\n", runtime.GOARCH, os.Args[1:])
	os.Exit(3)
}
`), 0o644)
	prog := filepath.Join(work, "prog")
	if err := goBuildFor("arm64", work, prog, src); err != nil {
		t.Fatal(err)
	}
	// c2vm's init for arm64, where assembly looks for it.
	initDir := filepath.Join(workDir, "init-arm64")
	os.MkdirAll(initDir, 0o755)
	if err := goBuildFor("arm64", "../..", filepath.Join(initDir, "c2vm-arm64"), "./cmd/c2vm"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(workDir, "app-arm64.tar")
	if err := os.WriteFile(tarball, ocitest.NewTar().File("prog", string(b), 0o755).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := outDir(t, "out")
	log := assemble(t, []string{"C2VM_INIT_DIR=" + initDir}, "--arch", "arm64", "-o", out, "--kernel-dir", kernels,
		"--entrypoint", `["/prog","x"]`, tarball)
	if !strings.Contains(log, "-arm64") {
		t.Errorf("assembly did not say it took the arm64 kernel:\n%s", log)
	}
	cmd := exec.Command(c2vm, "run", "--snapshot", "--no-expose", "--timeout", "900s", filepath.Join(out, "linux.img"))
	got, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("c2vm run: %v, want exit 3\n%s", err, tail(string(got), 3000))
	}
	if !strings.Contains(string(got), "C2VM-APP arch=arm64 args=[x]") {
		t.Errorf("the program saw:\n%s", tail(string(got), 2000))
	}
}

// goBuildFor builds a static binary of pkg for arch.
func goBuildFor(arch, dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v\n%s", pkg, arch, err, b)
	}
	return nil
}
