//go:build boot

package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// directProgram prints the kernel command line it was started with, then
// exits 7 ("exit"), or waits for SIGTERM and exits 42 ("wait").
const directProgram = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Printf("C2VM-DIRECT cmdline=%s\n", strings.TrimSpace(string(cmdline)))
	if os.Args[1] == "exit" {
		os.Exit(7)
	}
	fmt.Println("C2VM-DIRECT ready")
	<-term
	fmt.Println("C2VM-DIRECT term")
	os.Exit(42)
}
`

// directDisks assembles two app disks from one static program: one that
// exits, one that waits for SIGTERM.
func directDisks(t *testing.T) (exit, wait string) {
	dir, _ := fixture(t)
	work := t.TempDir()
	src, prog := filepath.Join(work, "prog.go"), filepath.Join(work, "prog")
	os.WriteFile(src, []byte(directProgram), 0o644)
	if err := goBuildStatic(work, prog, src); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(outDir(t, "src"), "app.tar")
	if err := os.WriteFile(tarball, ocitest.NewTar().File("prog", string(b), 0o755).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for mode, disk := range map[string]*string{"exit": &exit, "wait": &wait} {
		out := outDir(t, mode)
		assemble(t, nil, "-o", out, "--kernel-dir", dir, "--entrypoint", `["/prog"]`, "--cmd", mode, tarball)
		*disk = filepath.Join(out, "linux.img")
	}
	return exit, wait
}

// TestRunDirectKernel boots app disks with c2vm run's default, the
// direct kernel boot: the program runs with the command line of the
// disk's grub.cfg (and the direct boot's own words, but not GRUB's
// BOOT_IMAGE), its exit code is the run's, and SIGTERM to c2vm run
// reaches it through the guest's power button. The same disk still boots
// through the firmware and GRUB, as other hypervisors boot it.
func TestRunDirectKernel(t *testing.T) {
	exit, wait := directDisks(t)
	for _, c := range []struct {
		boot, want, not string
	}{
		{"auto", "cryptomgr.notests", "BOOT_IMAGE="},
		{"firmware", "BOOT_IMAGE=", "cryptomgr.notests"},
	} {
		start := time.Now()
		code, stdout, stderr := c2vmCmd(t, nil, "run", "--snapshot", "--boot", c.boot, "--timeout", "300s", exit)
		t.Logf("--boot %s: exit %d after %s", c.boot, code, time.Since(start).Round(100*time.Millisecond))
		line := directLine(stdout, "C2VM-DIRECT cmdline=")
		direct := strings.Contains(stderr, "starting the disk's kernel directly")
		if code != 7 || !strings.Contains(line, c.want) || strings.Contains(line, c.not) || direct != (c.boot == "auto") {
			t.Errorf("--boot %s: exit %d, command line %q, stderr:\n%s\nconsole:\n%s", c.boot, code, line, stderr, tail(stdout, 2000))
		}
	}

	cmd := exec.Command(c2vm, "run", "--name", "direct-wait", "--stop-timeout", "90s", "--timeout", "300s", wait)
	var console, stderr runConsole
	cmd.Stdout, cmd.Stderr = &console, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer exec.Command(c2vm, "rm", "-f", "direct-wait").Run()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !console.waitFor("C2VM-DIRECT ready", 240*time.Second, done) {
		t.Fatalf("the program did not start:\n%s\n%s", tail(console.String(), 3000), stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatalf("still running 120s after SIGTERM:\n%s", tail(console.String(), 3000))
	}
	if code := cmd.ProcessState.ExitCode(); code != 42 || !strings.Contains(console.String(), "C2VM-DIRECT term") {
		t.Errorf("after SIGTERM: exit %d, console:\n%s\n%s", code, tail(console.String(), 2000), stderr.String())
	}
	vm := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms/direct-wait")
	for _, f := range []string{"boot.json", "boot-vmlinuz", "boot-initrd.img"} {
		if _, err := os.Stat(filepath.Join(vm, f)); err != nil {
			t.Errorf("the VM keeps no %s for its next run: %v", f, err)
		}
	}
}

// directLine returns the console line starting with prefix, without it.
func directLine(console, prefix string) string {
	for _, l := range strings.Split(console, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return strings.TrimSpace(l[i+len(prefix):])
		}
	}
	return ""
}
