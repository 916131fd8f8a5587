//go:build boot

package boot

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGrubMenu proves the ways into GRUB's menu that the fast boot keeps
// (GRUB boots straight to the kernel, never through its menu): holding
// Shift as GRUB starts, after which the menu's entry boots; and a kernel
// that cannot be loaded, which leaves the user in the menu, after the
// error, rather than boot nothing.
func TestGrubMenu(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	disk := filepath.Join(out, "linux.img")

	// BIOS only: OVMF does not report a held Shift to GRUB's keystatus
	// (tried with GRUB 2.06 and 2.12, also Shift with another key), so
	// under UEFI the menu comes only after a failed load; docs/fast-loop.md
	// says so.
	t.Run("shift-bios", func(t *testing.T) { shiftToMenu(t, disk, 0, "BOOT_IMAGE=/vmlinuz ") })
	// The second entry boots the previous kernel, through the .old links.
	t.Run("previous-bios", func(t *testing.T) { shiftToMenu(t, disk, 1, "BOOT_IMAGE=/vmlinuz.old ") })

	// No kernel: the versioned file gone, the distribution's links dangle.
	broken := filepath.Join(out, "broken.img")
	if b, err := exec.Command("cp", "--sparse=always", disk, broken).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, b)
	}
	var kernel string
	for _, l := range strings.Fields(debugfsRoot(t, broken, false, "ls /boot")) {
		if strings.HasPrefix(l, "vmlinuz-") {
			kernel = "/boot/" + l
		}
	}
	if kernel == "" {
		t.Fatal("no /boot/vmlinuz-* on the disk")
	}
	debugfsRoot(t, broken, true, "rm "+kernel)
	for _, fw := range []string{"bios", "uefi"} {
		t.Run("no-kernel-"+fw, func(t *testing.T) {
			args := []string{"run", "--firmware", fw, "--snapshot", "--expect", "Linux (c2vm)", "--quit-on-expect", "--timeout", "120s", broken}
			b, err := exec.Command(c2vm, args...).CombinedOutput()
			s := string(b)
			if err != nil {
				t.Fatalf("GRUB's menu did not appear: %v\n%s", err, tail(s, 3000))
			}
			if !strings.Contains(s, "not found") || !strings.Contains(s, "could not be loaded") {
				t.Errorf("no error about the missing kernel before the menu:\n%s", tail(s, 2000))
			}
		})
	}
}

// afterCmdline is the kernel's line after its command line: stopping the
// guest on "Command line:" itself could cut that line short.
const afterCmdline = "BIOS-provided physical RAM map"

// shiftToMenu boots with Shift held until GRUB's menu shows, then moves
// down to an entry and presses Enter, as a user editing nothing would: the
// entry must boot the kernel, with want on its command line.
func shiftToMenu(t *testing.T, disk string, down int, want string) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(c2vm, "run", "--firmware", "bios", "--snapshot", "--qmp", sock,
		"--expect", afterCmdline, "--quit-on-expect", "--timeout", "180s", disk)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var c net.Conn
	for deadline := time.Now().Add(30 * time.Second); c == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no QMP socket after 30 s")
		}
		c, _ = net.Dial("unix", sock)
	}
	defer c.Close()
	go drain(c)
	fmt.Fprintln(c, `{"execute":"qmp_capabilities"}`)

	// A held key repeats: press Shift every 50 ms until the menu shows.
	menu := make(chan struct{})
	var console strings.Builder
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		shown := false
		for sc.Scan() {
			console.WriteString(sc.Text() + "\n")
			if !shown && strings.Contains(sc.Text(), "Linux (c2vm)") {
				shown = true
				close(menu)
			}
		}
	}()
	key := func(k string, down bool) {
		fmt.Fprintf(c, `{"execute":"input-send-event","arguments":{"events":[{"type":"key","data":{"down":%t,"key":{"type":"qcode","data":%q}}}]}}`+"\n", down, k)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
hold:
	for {
		select {
		case <-menu:
			break hold
		case <-scanned:
			t.Fatalf("the guest ran without GRUB's menu although Shift was held:\n%s", tail(console.String(), 3000))
		case <-tick.C:
			key("shift", true)
		}
	}
	key("shift", false)
	time.Sleep(500 * time.Millisecond)
	for range down {
		key("down", true)
		key("down", false)
		time.Sleep(200 * time.Millisecond)
	}
	key("ret", true)
	key("ret", false)
	<-scanned
	if err := cmd.Wait(); err != nil {
		t.Fatalf("Enter in GRUB's menu did not boot the kernel: %v\n%s", err, tail(console.String(), 3000))
	}
	if !strings.Contains(console.String(), want) {
		t.Errorf("entry %d did not boot with %q:\n%s", down, want, tail(console.String(), 2000))
	}
}

// drain reads QMP's greeting and replies, none of which matters here, so
// that QEMU never blocks on a full socket.
func drain(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// debugfsRoot runs one debugfs request on a disk's root filesystem,
// opened for writing when write is set.
func debugfsRoot(t *testing.T, disk string, write bool, req string) string {
	t.Helper()
	argv := []string{"-R", req, rootFS(t, disk)}
	if write {
		argv = append([]string{"-w"}, argv...)
	}
	b, err := exec.Command("debugfs", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, b)
	}
	return string(b)
}

// TestGrubNewestKernel: without the distribution's links GRUB boots the
// newest kernel in /boot at each boot: the one modified last, and between
// equal times the one newest by version at assembly.
func TestGrubNewestKernel(t *testing.T) {
	dir, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	disk := filepath.Join(out, "linux.img")
	var built string
	for _, l := range strings.Fields(debugfsRoot(t, disk, false, "ls /boot")) {
		if v, ok := strings.CutPrefix(l, "vmlinuz-"); ok {
			built = v
		}
	}
	if built == "" {
		t.Fatal("no /boot/vmlinuz-* on the disk")
	}
	mtime := regexp.MustCompile(`mtime: (0x[0-9a-f]+)`).FindStringSubmatch(debugfsRoot(t, disk, false, "stat /boot/vmlinuz-"+built))
	if mtime == nil {
		t.Fatal("no mtime for the built kernel")
	}
	// A second kernel, a copy under a greater version, as old as the first.
	const copyVer = "99.0.0-c2vm-amd64"
	for _, req := range []string{"rm /vmlinuz", "rm /initrd.img",
		"write " + filepath.Join(dir, "boot/vmlinuz-"+built) + " /boot/vmlinuz-" + copyVer,
		"write " + filepath.Join(dir, "boot/initrd.img-"+built) + " /boot/initrd.img-" + copyVer,
		"sif /boot/vmlinuz-" + copyVer + " mtime " + mtime[1]} {
		debugfsRoot(t, disk, true, req)
	}
	bootImage := func(fw string) string {
		t.Helper()
		b, err := exec.Command(c2vm, "run", "--firmware", fw, "--snapshot", "--expect", afterCmdline, "--quit-on-expect", "--timeout", "180s", disk).CombinedOutput()
		m := regexp.MustCompile(`BOOT_IMAGE=(\S+)`).FindSubmatch(b)
		if err != nil || m == nil {
			t.Fatalf("no kernel command line: %v\n%s", err, tail(string(b), 2000))
		}
		return string(m[1])
	}
	if got := bootImage("uefi"); got != "/boot/vmlinuz-"+built {
		t.Errorf("equal times: booted %s, want the kernel newest at assembly, %s", got, built)
	}
	debugfsRoot(t, disk, true, "sif /boot/vmlinuz-"+copyVer+" mtime 0x7f000000")
	if got := bootImage("bios"); got != "/boot/vmlinuz-"+copyVer {
		t.Errorf("booted %s, want the kernel modified last, %s", got, copyVer)
	}
}
