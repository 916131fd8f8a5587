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
	"strconv"
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
	_, tarball := fixture(t)
	return layoutOver(t, tarball, stayUpLayer(t).Bytes())
}

// stayUpLayer is the layer that makes the fixture stay up.
func stayUpLayer(t *testing.T) *ocitest.Tar {
	stays := strings.Replace(fixtureMarker(t), "systemctl --no-block poweroff", "", 1)
	if stays == fixtureMarker(t) {
		t.Fatal("marker script has an unexpected shape")
	}
	wants := "etc/systemd/system/multi-user.target.wants/"
	return ocitest.NewTar().
		File("usr/local/sbin/c2vm-marker", stays, 0o755).
		File("usr/local/sbin/c2vm-powerbutton", powerButtonScript, 0o755).
		File("etc/systemd/system/c2vm-powerbutton.service", powerButtonUnit, 0o644).
		Symlink(wants+"c2vm-powerbutton.service", "/etc/systemd/system/c2vm-powerbutton.service").
		File("etc/systemd/network/10-c2vm-test.network", staticNetwork, 0o644).
		Symlink(wants+"systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service").
		File("etc/systemd/system/c2vm-echo.socket", echoSocket, 0o644).
		File("etc/systemd/system/c2vm-echo@.service", echoService, 0o644).
		Symlink("etc/systemd/system/sockets.target.wants/c2vm-echo.socket", "/etc/systemd/system/c2vm-echo.socket")
}

// fixtureMarker is the fixture's marker script.
func fixtureMarker(t *testing.T) string {
	dir, _ := fixture(t)
	script, err := os.ReadFile(filepath.Join(dir, "usr/local/sbin/c2vm-marker"))
	if err != nil {
		t.Fatal(err)
	}
	return string(script)
}

// markerWith adds fields to the end of the fixture marker's line, which
// ends with `" >/dev/TTY` (the tty named literally or by $tty, as the
// tree was made).
func markerWith(t *testing.T, script, fields string) string {
	t.Helper()
	out := strings.Replace(script, `" >/dev/`, " "+fields+`" >/dev/`, 1)
	if out == script {
		t.Fatal("marker script has an unexpected shape")
	}
	return out
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

// bootMarker boots a disk with c2vm run's flags and env added to the
// environment, and returns the facts the guest printed on its C2VM-MARKER
// line.
func bootMarker(t *testing.T, env []string, disk, firmware string, flags ...string) map[string]string {
	t.Helper()
	start := time.Now()
	args := append([]string{"run", "--firmware", firmware, "--expect", "C2VM-MARKER", "--timeout", "300s"}, flags...)
	cmd := exec.Command(c2vm, append(args, disk)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boot %s (%s): %v\n%s", disk, firmware, err, tail(string(out), 3000))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "C2VM-MARKER "); i >= 0 {
			facts := map[string]string{"c2vm-output": string(out)}
			for _, f := range strings.Fields(line[i+len("C2VM-MARKER "):]) {
				k, v, _ := strings.Cut(f, "=")
				facts[k] = v
			}
			t.Logf("%s boot in %s: %s", firmware, time.Since(start).Round(time.Second), strings.TrimSpace(line[i:]))
			return facts
		}
	}
	t.Fatalf("no marker line in:\n%s", tail(string(out), 3000))
	return nil
}

// countingImage is the fixture whose marker also counts its boots in a
// file of the root filesystem: the count says which writes a boot saw.
func countingImage(t *testing.T) string {
	_, tarball := fixture(t)
	script := fixtureMarker(t)
	count := `n=$(cat /var/lib/c2vm-run/count 2>/dev/null || echo 0); n=$((n + 1))
mkdir -p /var/lib/c2vm-run && echo $n >/var/lib/c2vm-run/count && sync
fw=bios;`
	counting := markerWith(t, strings.Replace(script, "fw=bios;", count, 1), "count=$n")
	if strings.Count(counting, "count=$n") != 1 || !strings.Contains(counting, "/var/lib/c2vm-run/count") {
		t.Fatal("marker script has an unexpected shape")
	}
	return layoutOver(t, tarball, ocitest.NewTar().File("usr/local/sbin/c2vm-marker", counting, 0o755).Bytes())
}

// TestRunLeavesDisk boots a raw and a qcow2 output without --snapshot: the
// guest writes (and powers off cleanly), yet both files stay byte for byte
// as they were. A second run of the same name sees the first run's write;
// --in-place writes the disk itself.
func TestRunLeavesDisk(t *testing.T) {
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--format", "raw,qcow2", countingImage(t))
	raw, qcow := filepath.Join(out, "linux.img"), filepath.Join(out, "linux.qcow2")
	env := []string{"XDG_STATE_HOME=" + t.TempDir()}
	rawSum, qcowSum := sha(t, raw), sha(t, qcow)

	m := bootMarker(t, env, raw, "bios")
	if m["count"] != "1" || m["disk_bytes"] != strconv.Itoa(8<<30) || !regexp.MustCompile(`VM linux-[0-9a-f]{8}: new, on a 8G overlay`).MatchString(m["c2vm-output"]) {
		t.Errorf("raw, first run: count %s, disk %s bytes\n%s", m["count"], m["disk_bytes"], tail(m["c2vm-output"], 2000))
	}
	if sha(t, raw) != rawSum {
		t.Error("a run without --snapshot changed the raw disk")
	}

	for run := 1; run <= 2; run++ {
		m = bootMarker(t, env, qcow, "bios", "--name", "q")
		if m["count"] != strconv.Itoa(run) {
			t.Errorf("qcow2 run %d of VM q: count %s, want %d (the earlier run's write)", run, m["count"], run)
		}
		if sha(t, qcow) != qcowSum {
			t.Errorf("qcow2 run %d changed the qcow2 disk", run)
		}
	}
	if !strings.Contains(m["c2vm-output"], "VM q continues from its last run") {
		t.Errorf("the second run did not say it continues:\n%s", tail(m["c2vm-output"], 2000))
	}

	m = bootMarker(t, nil, raw, "bios", "--in-place", "--disk-size", "keep")
	if m["count"] != "1" || sha(t, raw) == rawSum || !strings.Contains(m["c2vm-output"], "do not upload it as an image") {
		t.Errorf("--in-place: count %s (want 1: the disk's own first boot), disk changed %v\n%s", m["count"], sha(t, raw) != rawSum, tail(m["c2vm-output"], 2000))
	}
}

// The stay-up guest with a stand-in SSH server: port 22 greets as sshd
// does, and closes.
const bannerSocket = `[Socket]
ListenStream=22
Accept=yes
[Install]
WantedBy=sockets.target
`

const bannerService = `[Service]
ExecStart=/bin/echo SSH-2.0-c2vm-test
StandardInput=socket
StandardOutput=socket
`

// c2vmCmd runs c2vm with env added and returns its exit status, stdout and
// stderr.
func c2vmCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(c2vm, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("c2vm %v: %v", args, err)
	return 0, "", ""
}

// TestRunDetached runs a named VM in the background and works it by name:
// c2vm run --detach returns once the guest's SSH server greets and port
// 8001 answers; ls shows it running with its forwards; logs shows its
// console; ssh execs ssh (a stand-in here) with the VM's port, user and
// known_hosts; stop presses the power button and the guest powers off
// cleanly; rm removes it.
func TestRunDetached(t *testing.T) {
	wants := "etc/systemd/system/sockets.target.wants/"
	top := stayUpLayer(t).
		File("etc/systemd/system/c2vm-banner.socket", bannerSocket, 0o644).
		File("etc/systemd/system/c2vm-banner@.service", bannerService, 0o644).
		Symlink(wants+"c2vm-banner.socket", "/etc/systemd/system/c2vm-banner.socket")
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, layoutOver(t, tarball, top.Bytes()))
	disk := filepath.Join(out, "linux.img")
	meta := `{"mode": "system", "firmware": "hybrid", "sshUser": "root"}`
	if err := os.WriteFile(filepath.Join(out, "c2vm.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	sshArgs := filepath.Join(bin, "args")
	os.WriteFile(filepath.Join(bin, "ssh"), []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" >"+sshArgs+"\n"), 0o755)
	env := []string{"XDG_STATE_HOME=" + t.TempDir(), "PATH=" + bin + ":" + os.Getenv("PATH")}
	t.Cleanup(func() { c2vmCmd(t, env, "rm", "-f", "a") })

	start := time.Now()
	code, _, stderr := c2vmCmd(t, env, "run", "--name", "a", "--detach", "--firmware", "bios", "--ssh", "--wait-port", "8001", disk)
	login := regexp.MustCompile(`log in with: ssh -p (\d+) root@127\.0\.0\.1 \(or c2vm ssh a\)`).FindStringSubmatch(stderr)
	if code != 0 || login == nil || !strings.Contains(stderr, "c2vm: port 8001 ready") || !strings.Contains(stderr, "c2vm: VM a runs in the background") {
		t.Fatalf("run --detach: exit %d\n%s", code, stderr)
	}
	t.Logf("c2vm run --detach returned, the guest's ports answering, after %s", time.Since(start).Round(time.Second))

	_, ls, _ := c2vmCmd(t, env, "ls")
	if !regexp.MustCompile(`(?m)^a\s+running\s+` + regexp.QuoteMeta(disk) + `\s+.*127\.0\.0\.1:` + login[1] + `->22`).MatchString(ls) {
		t.Errorf("ls:\n%s", ls)
	}
	var logs string
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs, "C2VM-MARKER"); time.Sleep(2 * time.Second) {
		_, logs, _ = c2vmCmd(t, env, "logs", "a")
	}
	if !strings.Contains(logs, "C2VM-MARKER fw=bios") {
		t.Errorf("logs:\n%s", tail(logs, 3000))
	}

	if code, _, stderr := c2vmCmd(t, env, "ssh", "a", "uname", "-a"); code != 0 {
		t.Errorf("ssh: exit %d\n%s", code, stderr)
	}
	got, _ := os.ReadFile(sshArgs)
	known := "UserKnownHostsFile=\"" + strings.TrimPrefix(env[0], "XDG_STATE_HOME=") + "/c2vm/vms/a/known_hosts\""
	want := strings.Join([]string{"-p", login[1], "-o", "HostKeyAlias=c2vm-a", "-o", known, "-o", "StrictHostKeyChecking=accept-new", "--", "root@127.0.0.1", "uname", "-a"}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("ssh got:\n%s\nwant:\n%s", got, want)
	}

	start = time.Now()
	code, _, stderr = c2vmCmd(t, env, "stop", "a")
	if code != 0 || !strings.Contains(stderr, "c2vm: VM a powered off") {
		t.Errorf("stop: exit %d\n%s", code, stderr)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Second))
	_, logs, _ = c2vmCmd(t, env, "logs", "a")
	for _, want := range []string{"C2VM-POWER-BUTTON", "reboot: Power down", "c2vm: the guest powered off"} {
		if !strings.Contains(logs, want) {
			t.Errorf("%q not in the log:\n%s", want, tail(logs, 3000))
		}
	}
	if _, ls, _ = c2vmCmd(t, env, "ls"); !regexp.MustCompile(`(?m)^a\s+stopped: powered off\s`).MatchString(ls) {
		t.Errorf("ls after stop:\n%s", ls)
	}
	if code, _, stderr := c2vmCmd(t, env, "rm", "a"); code != 0 {
		t.Errorf("rm: exit %d\n%s", code, stderr)
	}
	if _, ls, _ = c2vmCmd(t, env, "ls"); strings.Contains(ls, "\na ") {
		t.Errorf("ls after rm:\n%s", ls)
	}
}
