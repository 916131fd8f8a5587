//go:build boot

package boot

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGrubMenu proves the ways into GRUB's menu that the fast boot keeps
// (GRUB boots straight to the kernel, never through its menu): holding
// Shift as GRUB starts, and a kernel that cannot be loaded, which must
// leave the user in the menu under the error rather than boot nothing.
func TestGrubMenu(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	disk := filepath.Join(out, "linux.img")

	// BIOS only: OVMF does not report a held Shift to GRUB's keystatus
	// (tried with GRUB 2.06 and 2.12, also Shift with another key), so
	// under UEFI the menu is reached by a failed load or not at all; the
	// docs say so (docs/fast-loop.md).
	for _, fw := range []string{"bios"} {
		t.Run("shift-"+fw, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "qmp.sock")
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			go holdShift(ctx, sock)
			s := runToMenu(t, fw, disk, "--qmp", sock)
			if strings.Contains(s, "Linux version") {
				t.Errorf("the kernel started although Shift was held:\n%s", tail(s, 2000))
			}
		})
	}

	// No kernel: the versioned file gone, the distribution's links dangle.
	broken := filepath.Join(out, "broken.img")
	if b, err := exec.Command("cp", "--sparse=always", disk, broken).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	var kernel string
	for _, l := range strings.Split(debugfsRoot(t, broken, "ls /boot"), " ") {
		if strings.HasPrefix(l, "vmlinuz-") {
			kernel = "/boot/" + l
		}
	}
	if kernel == "" {
		t.Fatal("no /boot/vmlinuz-* on the disk")
	}
	debugfsRoot(t, broken, "-w", "rm "+kernel)
	for _, fw := range []string{"bios", "uefi"} {
		t.Run("no-kernel-"+fw, func(t *testing.T) {
			s := runToMenu(t, fw, broken)
			if !strings.Contains(s, "not found") {
				t.Errorf("no error about the missing kernel before the menu:\n%s", tail(s, 2000))
			}
		})
	}
}

// runToMenu boots until GRUB's menu entry shows on the serial console.
func runToMenu(t *testing.T, fw, disk string, flags ...string) string {
	t.Helper()
	args := append([]string{"run", "--firmware", fw, "--snapshot", "--expect", "Linux (c2vm)", "--quit-on-expect", "--timeout", "120s"}, flags...)
	b, err := exec.Command(c2vm, append(args, disk)...).CombinedOutput()
	s := string(b)
	if err != nil {
		t.Fatalf("GRUB's menu did not appear (%s): %v\n%s", fw, err, tail(s, 3000))
	}
	return s
}

// holdShift presses Shift through QMP every 50 ms, as a held key repeats,
// until ctx ends: GRUB reads the firmware's shift state when it starts.
func holdShift(ctx context.Context, sock string) {
	var c net.Conn
	for c == nil {
		if ctx.Err() != nil {
			return
		}
		c, _ = net.Dial("unix", sock)
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	fmt.Fprintln(c, `{"execute":"qmp_capabilities"}`)
	go func() {
		// Drain the greeting and replies so QEMU never blocks on a full
		// socket; none of them matters here.
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	ev := `{"execute":"input-send-event","arguments":{"events":[{"type":"key","data":{"down":true,"key":{"type":"qcode","data":"shift"}}}]}}`
	for ctx.Err() == nil {
		if _, err := fmt.Fprintln(c, ev); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// debugfsRoot runs a debugfs request on a disk's root filesystem; "-w"
// first opens it for writing.
func debugfsRoot(t *testing.T, disk string, args ...string) string {
	t.Helper()
	argv := []string{"-R", args[len(args)-1], rootFS(t, disk)}
	if len(args) > 1 {
		argv = append([]string{args[0]}, argv...)
	}
	b, err := exec.Command("debugfs", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %v: %v\n%s", args, err, b)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
