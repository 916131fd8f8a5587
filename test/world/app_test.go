//go:build world

package world

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeContext makes a build context from file names and contents.
func writeContext(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, body := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755))
	}
	return dir
}

// buildDisk builds a context with buildx through the c2vm frontend.
func buildDisk(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out := t.TempDir()
	a := []string{"--build-arg", "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE")}
	for _, x := range args {
		a = append(a, "--build-arg", x)
	}
	buildx(t, append(a, "-o", out, dir)...)
	return out
}

// runApp boots an app-mode disk to its end and returns c2vm run's exit code
// and the console.
func runApp(t *testing.T, disk string, flags ...string) (int, string) {
	t.Helper()
	args := append([]string{"run", "--timeout", "300s"}, flags...)
	cmd := exec.Command(c2vm, append(args, disk)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("c2vm run: %v", err)
	return 0, ""
}

// reportImage is a FROM scratch image holding reportGo as /report; a test
// adds its config.
const reportImage = `FROM golang:1.26-trixie AS build
WORKDIR /src
COPY report.go .
RUN CGO_ENABLED=0 go build -o /report report.go
FROM scratch
COPY --from=build /report /report
`

const reportGo = `package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	wd, _ := os.Getwd()
	b, _ := json.Marshal(map[string]any{"args": os.Args, "env": os.Environ(), "uid": os.Getuid(), "gid": os.Getgid(), "cwd": wd})
	fmt.Printf("C2VM-REPORT %s\n", b)
	os.Exit(3)
}
`

// A FROM scratch image with a static Go program runs as the image config
// says, and c2vm run exits with its code, under BIOS and UEFI.
func TestAppModeScratchProgram(t *testing.T) {
	parallelBoot(t)
	dir := writeContext(t, map[string]string{"report.go": reportGo, "Dockerfile": reportImage + `ENV GREETING="hello world" PATH=/bin
WORKDIR /work/dir
USER 1234:5678
ENTRYPOINT ["/report", "first"]
CMD ["second", "third"]
`})
	disk := filepath.Join(buildDisk(t, dir), "linux.img")
	for _, fw := range []string{"bios", "uefi"} {
		code, out := runApp(t, disk, "--snapshot", "--firmware", fw)
		m := regexp.MustCompile(`C2VM-REPORT (\{.*\})`).FindStringSubmatch(out)
		if code != 3 || m == nil {
			t.Fatalf("%s: exit %d, want 3\n%s", fw, code, tail(out, 3000))
		}
		var r struct {
			Args     []string
			Env      []string
			UID, GID int
			Cwd      string
		}
		must(t, json.Unmarshal([]byte(m[1]), &r))
		if !slices.Equal(r.Args, []string{"/report", "first", "second", "third"}) || r.UID != 1234 || r.GID != 5678 || r.Cwd != "/work/dir" {
			t.Errorf("%s: %+v", fw, r)
		}
		for _, e := range []string{"GREETING=hello world", "PATH=/bin", "HOME=/", "HOSTNAME=c2vm"} {
			if !slices.Contains(r.Env, e) {
				t.Errorf("%s: environment %v lacks %s", fw, r.Env, e)
			}
		}
		if !strings.Contains(out, "c2vm: exit code=3") {
			t.Errorf("%s: no exit line on the console", fw)
		}
	}
}

const busyboxScript = `#!/bin/sh
host=$MIRROR_HOST
if nslookup "$host" >/dev/null 2>&1; then dns=ok; else dns=failed; fi
# An orphan: its parent exits at once, so PID 1 must reap it.
sh -c 'sleep 0.3 & exit 0'
sleep 2
zombies=0
for s in /proc/[0-9]*/status; do grep -q '^State:.*Z' "$s" 2>/dev/null && zombies=$((zombies+1)); done
echo "C2VM-BB dns=$dns zombies=$zombies"
mkdir -p /data
trap 'echo stopped >/data/stopped; sync; echo C2VM-BB-TERM; exit 0' TERM
echo C2VM-BB-READY
while :; do sleep 1; done
`

// Busybox from Debian in FROM scratch: a userland without apt runs in app
// mode; DNS resolves; no zombie is left; the ACPI power button (QMP
// system_powerdown) reaches the program, whose last write is on the disk,
// and the filesystem is clean.
func TestAppModeBusybox(t *testing.T) {
	parallelBoot(t)
	dir := writeContext(t, map[string]string{"test.sh": busyboxScript, "Dockerfile": `FROM debian:bookworm AS bb
RUN apt-get update && apt-get install -y --no-install-recommends busybox-static && rm -rf /var/lib/apt/lists/*
FROM scratch
COPY --from=bb /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY test.sh /test.sh
ARG MIRROR_HOST
ENV MIRROR_HOST=$MIRROR_HOST
CMD ["/bin/sh", "/test.sh"]
`})
	disk := filepath.Join(buildDisk(t, dir, "MIRROR_HOST="+mirrorHost(t)), "linux.img")
	qmp := filepath.Join(t.TempDir(), "qmp.sock")
	// --in-place: the file written on SIGTERM is read back from the disk.
	cmd := exec.Command(c2vm, "run", "--in-place", "--timeout", "300s", "--qmp", qmp, disk)
	lines, wait := console(t, cmd)
	waitFor(t, lines, "C2VM-BB-READY", 240*time.Second)
	qmpCommand(t, qmp, "system_powerdown", nil)
	out, err := wait()
	if err != nil {
		t.Fatalf("c2vm run: %v\n%s", err, tail(out, 3000))
	}
	if !strings.Contains(out, "C2VM-BB dns=ok zombies=0") || !strings.Contains(out, "C2VM-BB-TERM") {
		t.Errorf("guest report:\n%s", tail(out, 3000))
	}
	if got := catDisk(t, disk, "/data/stopped"); got != "stopped\n" {
		t.Errorf("the file written on SIGTERM: %q", got)
	}
	if out, err := exec.Command("e2fsck", "-fn", rootFS(t, disk)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
}

// An HTTP server in app mode (python3 on debian:bookworm-slim): c2vm run
// forwards its EXPOSEd port and the host fetches a page.
func TestAppModeHTTPServer(t *testing.T) {
	parallelBoot(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
RUN echo c2vm-page-ok >index.html
EXPOSE 8000
CMD ["python3", "-m", "http.server", "8000"]
`})
	disk := filepath.Join(buildDisk(t, dir, "C2VM_MODE=app"), "linux.img")
	cmd := exec.Command(c2vm, "run", "--snapshot", "--timeout", "400s", disk)
	lines, wait := console(t, cmd)
	port := waitFor(t, lines, "port 8000/tcp", 30*time.Second)
	m := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(port)
	if m == nil {
		t.Fatalf("no forwarded port in %q", port)
	}
	page := ""
	deadline := time.Now().Add(240 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(page, "c2vm-page-ok") {
		if resp, err := http.Get("http://127.0.0.1:" + m[1] + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(b)
		}
		time.Sleep(2 * time.Second)
	}
	cmd.Process.Signal(os.Interrupt)
	out, _ := wait()
	if !strings.Contains(page, "c2vm-page-ok") {
		t.Fatalf("no page through the forwarded port\n%s", tail(out, 3000))
	}
}

// System mode: the image's CMD runs as c2vm-app.service with the image's
// USER and ENV; C2VM_APP=off leaves it out, as does a CMD that is a shell.
func TestSystemModeService(t *testing.T) {
	parallelBoot(t)
	dir := exampleContext(t, "debian", "")
	df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	df = append(df, []byte(`RUN apt-get update && apt-get install -y --no-install-recommends python3 procps && rm -rf /var/lib/apt/lists/* && useradd -m web
ENV GREETING=hello-service
USER web
WORKDIR /home/web
CMD ["python3", "-m", "http.server", "8000"]
`)...)
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644))
	script := `#!/bin/sh
for i in $(seq 60); do systemctl is-active -q c2vm-app && pgrep -x python3 >/dev/null && break; sleep 1; done
pid=$(pgrep -x python3 | head -n1)
greet=$(tr '\0' '\n' </proc/$pid/environ | sed -n 's/^GREETING=//p')
echo "C2VM-MARKER service=$(systemctl is-active c2vm-app) user=$(ps -o user= -p $pid) greeting=$greet" >/dev/ttyS0
systemctl --no-block poweroff
`
	must(t, os.WriteFile(filepath.Join(dir, "c2vm-marker"), []byte(script), 0o755))
	out := buildDisk(t, dir)
	facts := boot(t, filepath.Join(out, "linux.img"), "bios")
	if facts["service"] != "active" || facts["user"] != "web" || facts["greeting"] != "hello-service" {
		t.Errorf("service facts %v", facts)
	}
	off := buildDisk(t, dir, "C2VM_APP=off")
	if existsOnDisk(t, filepath.Join(off, "linux.img"), "/etc/systemd/system/c2vm-app.service") {
		t.Error("C2VM_APP=off: the service is there")
	}
	// examples/debian's CMD is bash, from its base image: no service.
	plain := buildDisk(t, exampleContext(t, "debian", ""))
	if existsOnDisk(t, filepath.Join(plain, "linux.img"), "/etc/systemd/system/c2vm-app.service") {
		t.Error("CMD bash got a service")
	}
}

// mirrorHost is the Debian mirror this machine uses: a name the guest's DNS
// (QEMU's, forwarding to this host's resolver) can resolve.
func mirrorHost(t *testing.T) string {
	b, _ := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	m := regexp.MustCompile(`(?m)^URIs:\s*(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Skip("no Debian mirror in apt sources")
	}
	u, err := url.Parse(string(m[1]))
	must(t, err)
	return u.Hostname()
}

// console starts cmd and streams its output lines; wait ends it and returns
// all the output.
func console(t *testing.T, cmd *exec.Cmd) (<-chan string, func() (string, error)) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	must(t, cmd.Start())
	lines := make(chan string, 4096)
	var all strings.Builder
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			all.WriteString(sc.Text() + "\n")
			mu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return lines, func() (string, error) {
		err := cmd.Wait()
		pw.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return all.String(), err
	}
}

func waitFor(t *testing.T, lines <-chan string, text string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, text) {
				return l
			}
		case <-timeout:
			t.Fatalf("%q did not appear within %s", text, d)
		}
	}
}

// qmpCommand sends one QMP command with its arguments (nil for none) and
// waits for the reply.
func qmpCommand(t *testing.T, sock, command string, arguments any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	must(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	fmt.Fprintln(conn, `{"execute":"qmp_capabilities"}`)
	r.ReadString('\n')
	req := map[string]any{"execute": command}
	if arguments != nil {
		req["arguments"] = arguments
	}
	b, _ := json.Marshal(req)
	fmt.Fprintf(conn, "%s\n", b)
	for {
		// Events (such as POWERDOWN) may come before the reply.
		l, err := r.ReadString('\n')
		if err != nil || strings.Contains(l, `"error"`) {
			t.Fatalf("QMP %s: %v %s", command, err, l)
		}
		if strings.Contains(l, `"return"`) {
			return
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
