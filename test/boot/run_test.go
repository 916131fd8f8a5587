//go:build boot

package boot

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// TestRunDefaultFirmwareAndTimeout boots a UEFI-only disk without
// --firmware: the partition table alone (c2vm.json removed) must pick UEFI,
// where BIOS would hang at "Booting from Hard Disk...". First, --timeout
// without --expect must fail rather than look like success.
func TestRunDefaultFirmwareAndTimeout(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--firmware", "uefi", tarball)
	os.Remove(filepath.Join(out, "c2vm.json"))
	disk := filepath.Join(out, "linux.img")

	start := time.Now()
	cmd := exec.Command(c2vm, "run", "--snapshot", "--timeout", "5s", disk)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("--timeout 5s without --expect: %v, want exit status 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "still running after --timeout 5s") || !strings.Contains(stderr.String(), "fix:") {
		t.Errorf("unclear message:\n%s", stderr.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the timed-out run took %s", d)
	}

	start = time.Now()
	b, err := exec.Command(c2vm, "run", "--snapshot", "--expect", "C2VM-MARKER", "--timeout", "300s", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("default firmware on a UEFI-only disk: %v\n%s", err, tail(string(b), 3000))
	}
	if !strings.Contains(string(b), "C2VM-MARKER fw=uefi ") {
		t.Errorf("no UEFI marker:\n%s", tail(string(b), 3000))
	}
	t.Logf("UEFI boot by default in %s", time.Since(start).Round(time.Second))
}

// The guest for TestRunStopAndPorts: the fixture, changed so that it stays
// up after its marker, serves TCP ports 8000 and 8001 (systemd socket
// activation, echo: no server package needed) on QEMU's usual guest
// address, and powers off on the ACPI power button. Minimal Debian has no
// D-Bus, hence no systemd-logind to do that: a script reads the button's
// input device as logind would.
const (
	powerButtonScript = `#!/bin/sh
dev=
while [ -z "$dev" ]; do
	for d in /sys/class/input/event*; do
		[ "$(cat "$d/device/name" 2>/dev/null)" = "Power Button" ] && dev=/dev/input/${d##*/}
	done
	[ -n "$dev" ] && [ -e "$dev" ] || { dev=; sleep 1; }
done
head -c 24 "$dev" >/dev/null
echo C2VM-POWER-BUTTON >/dev/ttyS0
systemctl --no-block poweroff
`
	powerButtonUnit = `[Unit]
Description=Power off on the ACPI power button
[Service]
ExecStart=/usr/local/sbin/c2vm-powerbutton
[Install]
WantedBy=multi-user.target
`
	echoSocket = `[Socket]
ListenStream=8000
ListenStream=8001
Accept=yes
[Install]
WantedBy=sockets.target
`
	echoService = `[Service]
ExecStart=/bin/echo C2VM-PORT-OK
StandardInput=socket
StandardOutput=socket
`
	staticNetwork = `[Match]
Name=en*
[Network]
Address=10.0.2.15/24
`
)

func stayUpImage(t *testing.T) string {
	dir, tarball := fixture(t)
	script, err := os.ReadFile(filepath.Join(dir, "usr/local/sbin/c2vm-marker"))
	if err != nil {
		t.Fatal(err)
	}
	stays := strings.Replace(string(script), "systemctl --no-block poweroff", "", 1)
	if stays == string(script) {
		t.Fatal("marker script has an unexpected shape")
	}
	wants := "etc/systemd/system/multi-user.target.wants/"
	top := ocitest.NewTar().
		File("usr/local/sbin/c2vm-marker", stays, 0o755).
		File("usr/local/sbin/c2vm-powerbutton", powerButtonScript, 0o755).
		File("etc/systemd/system/c2vm-powerbutton.service", powerButtonUnit, 0o644).
		Symlink(wants+"c2vm-powerbutton.service", "/etc/systemd/system/c2vm-powerbutton.service").
		File("etc/systemd/network/10-c2vm-test.network", staticNetwork, 0o644).
		Symlink(wants+"systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service").
		File("etc/systemd/system/c2vm-echo.socket", echoSocket, 0o644).
		File("etc/systemd/system/c2vm-echo@.service", echoService, 0o644).
		Symlink("etc/systemd/system/sockets.target.wants/c2vm-echo.socket", "/etc/systemd/system/c2vm-echo.socket").
		Bytes()
	return layoutOver(t, tarball, top)
}

// TestRunStopAndPorts boots a guest that stays up and checks, while it
// runs, the forwards QEMU set up (over --qmp) and that data flows through
// them: the disk's exposed port 8000 (c2vm.json) on its printed host port,
// and -p 127.0.0.1:P:8001. Then SIGTERM to c2vm run must press the power
// button: the guest powers off through ACPI, and the run exits 0, well
// within --stop-timeout.
func TestRunStopAndPorts(t *testing.T) {
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, stayUpImage(t))
	disk := filepath.Join(out, "linux.img")
	meta := `{"mode": "system", "firmware": "hybrid", "exposedPorts": ["8000/tcp"]}`
	if err := os.WriteFile(filepath.Join(out, "c2vm.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(out, "qmp.sock")
	p := runFreePort(t)
	cmd := exec.Command(c2vm, "run", "--snapshot", "--qmp", sock, "-p", "127.0.0.1:"+p+":8001",
		"--stop-timeout", "90s", "--timeout", "400s", disk)
	var console, stderr runConsole
	cmd.Stdout, cmd.Stderr = &console, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if !console.waitFor("C2VM-MARKER", 300*time.Second, done) {
		t.Fatalf("no marker:\n%s\n%s", tail(console.String(), 3000), stderr.String())
	}

	exposed := regexp.MustCompile(`c2vm: port 8000/tcp → 127\.0\.0\.1:(\d+)`).FindStringSubmatch(stderr.String())
	if exposed == nil || !strings.Contains(stderr.String(), "c2vm: port 8001/tcp → 127.0.0.1:"+p) {
		t.Fatalf("forwards not announced:\n%s", stderr.String())
	}
	usernet := runHMP(t, sock, "info usernet")
	for _, hp := range []string{exposed[1], p} {
		if !regexp.MustCompile(`HOST_FORWARD.*127\.0\.0\.1\s+` + hp + `\s+10\.0\.2\.15`).MatchString(usernet) {
			t.Errorf("QEMU has no forward from 127.0.0.1:%s:\n%s", hp, usernet)
		}
	}
	for _, hp := range []string{exposed[1], p} {
		if got := runReadPort(t, "127.0.0.1:"+hp, 60*time.Second); !strings.Contains(got, "C2VM-PORT-OK") {
			t.Errorf("127.0.0.1:%s answered %q, want the guest's C2VM-PORT-OK", hp, got)
		}
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("run still going 120s after SIGTERM:\n%s", tail(console.String(), 3000))
	}
	t.Logf("powered off %s after SIGTERM", time.Since(start).Round(time.Second))
	for _, want := range []string{"C2VM-POWER-BUTTON", "reboot: Power down"} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("%q not on the console:\n%s", want, tail(console.String(), 3000))
		}
	}
	if !strings.Contains(stderr.String(), "pressing the guest's power button") {
		t.Errorf("no note about the power button:\n%s", stderr.String())
	}
}

type runConsole struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *runConsole) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *runConsole) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits for text, giving up early when the process ends.
func (s *runConsole) waitFor(text string, limit time.Duration, done <-chan error) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		if strings.Contains(s.String(), text) {
			return true
		}
		select {
		case err := <-done:
			return strings.Contains(s.String(), text) && err == nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

func runFreePort(t *testing.T) string {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// runReadPort reads what a forwarded port sends. QEMU accepts on the host side
// before the guest listens and then closes empty, so empty answers are
// retried.
func runReadPort(t *testing.T, addr string, limit time.Duration) string {
	var got string
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Second) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			got = err.Error()
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if got = string(b); got != "" {
			return got
		}
	}
	return got
}

// runHMP runs a human monitor command over a QMP socket.
func runHMP(t *testing.T, sock, command string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	enc := json.NewEncoder(c)
	var reply struct {
		Return json.RawMessage
		Error  any
	}
	read := func() {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("QMP: %v", err)
			}
			reply.Return, reply.Error = nil, nil
			json.Unmarshal(line, &reply)
			if reply.Return != nil || reply.Error != nil {
				return
			}
		}
	}
	r.ReadBytes('\n') // greeting
	enc.Encode(map[string]any{"execute": "qmp_capabilities"})
	read()
	enc.Encode(map[string]any{"execute": "human-monitor-command", "arguments": map[string]string{"command-line": command}})
	read()
	var s string
	if err := json.Unmarshal(reply.Return, &s); err != nil {
		t.Fatalf("QMP %s: %v %v", command, reply.Error, err)
	}
	return s
}
