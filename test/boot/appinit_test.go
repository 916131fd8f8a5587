//go:build boot

package boot

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
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

	"github.com/c2vm/c2vm/appinit"
	"github.com/c2vm/c2vm/exporter/initramfs"
)

// The app-mode boot tests build c2vm's initramfs for the fixture's kernel,
// make plain ext4 root filesystems holding a static test program (the
// "probe" below) and a /.c2vm/config.json, boot them under QEMU and check
// from inside what the program got. Each boot costs 15–35 s under TCG, so
// each checks many things, and the boots run two at a time.

// probeSource is the program in the images. Modes: report prints what a
// container runtime decides (argv, env, ids, cwd, tty) and what the VM
// provides (address, DNS, zombie reaping), then exits 3; trap waits for
// SIGTERM, writes a file and exits 42; spawn and nap make an orphan.
const probeSource = `package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func out(k string, v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("PROBE %s=%s\n", k, b)
}

func main() {
	switch os.Args[1] {
	case "nap":
		time.Sleep(300 * time.Millisecond)
		return
	case "spawn": // leave a grandchild behind: it is reparented to PID 1
		self, _ := os.Executable()
		os.StartProcess(self, []string{"probe", "nap"}, &os.ProcAttr{})
		return
	}
	uptime, _ := os.ReadFile("/proc/uptime")
	out("uptime", strings.Fields(string(uptime))[0])
	out("argv", os.Args)
	out("env", os.Environ())
	groups, _ := os.Getgroups()
	if groups == nil {
		groups = []int{}
	}
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	out("ids", map[string]any{"uid": os.Getuid(), "gid": os.Getgid(), "groups": groups, "cwd": cwd, "hostname": host})
	var pgrp int32
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	out("tty", e == 0 && int(pgrp) == syscall.Getpgrp() && os.Getpid() == syscall.Getpgrp())
	if os.Args[1] == "trap" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("PROBE ready")
		s := <-sig
		if err := os.WriteFile("stopped", []byte("stopped by "+s.String()), 0o644); err != nil {
			fmt.Println("PROBE write:", err)
		}
		os.Exit(42)
	}
	var addrs []string
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		as, _ := i.Addrs()
		for _, a := range as {
			addrs = append(addrs, i.Name+" "+a.String())
		}
	}
	out("addrs", addrs)
	ips, err := net.LookupHost(os.Args[3])
	out("dns", fmt.Sprint(ips, err))
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			points = append(points, f[4])
		}
	}
	out("mounts", points)
	self, _ := os.Executable()
	p, _ := os.StartProcess(self, []string{"probe", "spawn"}, &os.ProcAttr{})
	p.Wait()
	time.Sleep(1500 * time.Millisecond) // the orphan has exited: is it reaped?
	zombies := []string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, _ := os.ReadFile(st)
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			zombies = append(zombies, st)
		}
	}
	out("zombies", zombies)
	// More than the host's pipe and the serial driver's 4 KiB queue, read
	// slowly by the test, then exit at once: the last line is still queued
	// for the UART when the program is gone.
	for i := 0; i < 800; i++ {
		fmt.Printf("PROBE filler %03d %s\n", i, strings.Repeat("x", 80))
	}
	out("last", "line")
	os.Exit(3)
}
`

var app struct {
	once             sync.Once
	err              error
	dir              string
	kernel, initrd   string
	probe            string
	buildLog         string
	initramfsSize    int64
	initramfsElapsed time.Duration
}

// appSetup builds, once, the static init, the initramfs and the probe.
func appSetup(t *testing.T) {
	app.once.Do(func() { app.err = appBuild() })
	if app.err != nil {
		t.Fatal(app.err)
	}
}

func appBuild() error {
	dir, err := os.MkdirTemp(workDir, "appinit-")
	if err != nil {
		return err
	}
	app.dir = dir
	init, err := staticC2vm(dir)
	if err != nil {
		return err
	}
	tree := os.Getenv("C2VM_FIXTURE")
	if tree == "" {
		return fmt.Errorf("C2VM_FIXTURE is not set: run through make test, or set it to the output of hack/fixture-tree")
	}
	k, err := initramfs.FindKernel(tree)
	if err != nil {
		return err
	}
	var notes []string
	k.Logf = func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	app.kernel, app.initrd = filepath.Join(k.Dir, k.Image), filepath.Join(dir, "initrd.img")
	f, err := os.Create(app.initrd)
	if err != nil {
		return err
	}
	start := time.Now()
	err = initramfs.Build(f, k, init, initramfs.DefaultModules)
	app.initramfsElapsed = time.Since(start)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fi, _ := os.Stat(app.initrd)
	app.initramfsSize = fi.Size()
	app.buildLog = fmt.Sprintf("kernel %s, initramfs %.1f MiB in %s, notes %q", k.Version, float64(fi.Size())/(1<<20), app.initramfsElapsed.Round(time.Millisecond), notes)
	src := filepath.Join(dir, "probe-src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module probe\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(probeSource), 0o644)
	app.probe = filepath.Join(dir, "probe")
	return goBuildStatic(src, app.probe, ".")
}

// staticC2vm returns the test's c2vm if it is static, or builds a static
// one: /init runs with no C library around it.
func staticC2vm(dir string) (string, error) {
	f, err := elf.Open(c2vm)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			bin := filepath.Join(dir, "c2vm-static")
			pkg, _ := filepath.Abs("../../cmd/c2vm")
			return bin, goBuildStatic(".", bin, pkg)
		}
	}
	return c2vm, nil
}

func goBuildStatic(dir, out, pkg string) error {
	return goBuildFor("amd64", dir, out, pkg)
}

// appImage is a plain ext4 filesystem (no partition table) made by mke2fs
// from a directory: the probe at /usr/local/bin/probe, the config, and
// files[path] = content ("->target" makes a symlink).
func appImage(t *testing.T, uuid string, cfg appinit.Config, files map[string]string, prepare func(root string)) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	bin := filepath.Join(root, "usr/local/bin")
	os.MkdirAll(bin, 0o755)
	data, _ := os.ReadFile(app.probe)
	os.WriteFile(filepath.Join(bin, "probe"), data, 0o755)
	cj, _ := json.Marshal(cfg)
	files[appinit.ConfigPath[1:]] = string(cj)
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if target, ok := strings.CutPrefix(c, "->"); ok {
			os.Symlink(target, full)
		} else {
			os.WriteFile(full, []byte(c), 0o644)
		}
	}
	if prepare != nil {
		prepare(root)
	}
	img := filepath.Join(t.TempDir(), "root.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-U", uuid, "-d", root, img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return img
}

// appBoot boots an image with the initramfs and returns the console output;
// onLine sees every line as it arrives. It logs how long the boot took.
func appBoot(t *testing.T, img string, qmp string, onLine func(line string)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	uuid := imageUUID(t, img)
	args := []string{"-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
		"-kernel", app.kernel, "-initrd", app.initrd,
		"-append", "root=UUID=" + uuid + " console=ttyS0,115200 quiet panic=-1",
		"-drive", "file=" + img + ",format=raw,if=virtio",
		"-netdev", "user,id=n", "-device", "virtio-net-pci,netdev=n"}
	if qmp != "" {
		args = append(args, "-qmp", "unix:"+qmp+",server=on,wait=off")
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var firstProbe time.Duration
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := ansiEscape.ReplaceAllString(strings.TrimRight(sc.Text(), "\r"), "")
		out.WriteString(line + "\n")
		if firstProbe == 0 && strings.HasPrefix(line, "PROBE ") {
			firstProbe = time.Since(start)
		}
		if onLine != nil {
			onLine(line)
		}
	}
	if d := os.Getenv("C2VM_APP_CONSOLE_DIR"); d != "" { // keep the consoles for debugging
		os.WriteFile(filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+".log"), []byte(out.String()), 0o644)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qemu: %v\n%s", err, tail(out.String(), 3000))
	}
	t.Logf("boot: program output %s after QEMU started, VM off after %s", firstProbe.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return out.String()
}

// ansiEscape matches the terminal resets SeaBIOS and the kernel print.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Za-z])`)

func imageUUID(t *testing.T, img string) string {
	out, err := exec.Command("debugfs", "-R", "stats", img).CombinedOutput()
	if m := regexp.MustCompile(`UUID:\s+(\S+)`).FindSubmatch(out); err == nil && m != nil {
		return string(m[1])
	}
	t.Fatalf("UUID of %s: %v\n%s", img, err, out)
	return ""
}

// exitCode is N of the init's "c2vm: exit code=N" line.
func exitCode(t *testing.T, out string) string {
	m := regexp.MustCompile(`(?m)^c2vm: exit code=(\d+)$`).FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("want one exit code line, got %d:\n%s", len(m), tail(out, 3000))
	}
	return m[0][1]
}

// probeValue decodes the PROBE line named k.
func probeValue(t *testing.T, out, k string, v any) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if j, ok := strings.CutPrefix(l, "PROBE "+k+"="); ok {
			if err := json.Unmarshal([]byte(j), v); err != nil {
				t.Fatalf("PROBE %s: %v in %q", k, err, j)
			}
			return
		}
	}
	t.Fatalf("no PROBE %s line in:\n%s", k, tail(out, 3000))
}

func fsckClean(t *testing.T, img string) {
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after power-off: %v\n%s", err, out)
	}
}

// mirrorHost is the host name of this machine's Debian mirror: resolving it
// proves the guest's DNS reaches a real resolver.
func mirrorHost(t *testing.T) string {
	data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	if err != nil {
		t.Skip("no /etc/apt/sources.list.d/debian.sources to take a host name from")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if u, ok := strings.CutPrefix(l, "URIs:"); ok {
			if p, err := url.Parse(strings.Fields(u)[0]); err == nil && p.Hostname() != "" {
				return p.Hostname()
			}
		}
	}
	t.Skip("no URIs: in debian.sources")
	return ""
}

const appPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n"
const appGroup = "root:x:0:\ntty:x:5:\naudio:x:29:app\napp:x:1000:\nextra:x:2000:other,app\n"

func TestAppInit(t *testing.T) {
	fixture(t)
	appSetup(t)
	t.Log(app.buildLog)
	t.Run("report", appReport)
	t.Run("powerdown", appPowerdown)
	t.Run("missing-program", func(t *testing.T) {
		appFailure(t, appinit.Config{Cmd: []string{"missing-prog"}}, "127", `c2vm: exec: "missing-prog": executable file not found in $PATH`)
	})
	t.Run("unknown-user", func(t *testing.T) {
		appFailure(t, appinit.Config{Entrypoint: []string{"probe"}, User: "ghost"}, "125", `c2vm: user "ghost": unable to find user ghost`)
	})
}

// appReport: a scratch-like image (no /proc, /dev, /etc/hosts…), a named
// user with supplementary groups, a program found through PATH, an
// /etc/resolv.conf symlinked into /run as on systemd images.
func appReport(t *testing.T) {
	t.Parallel()
	host := mirrorHost(t)
	cfg := appinit.Config{Entrypoint: []string{"probe", "report"}, Cmd: []string{"a b", host}, Env: []string{"GREETING=hello world", "EMPTY="},
		User: "app", WorkingDir: "/work/dir", Hostname: "apphost"}
	img := appImage(t, "3f1c6f0e-0b7a-4d2e-9c1d-1a2b3c4d5e6f", cfg, map[string]string{
		"etc/passwd": appPasswd, "etc/group": appGroup, "etc/resolv.conf": "->../run/systemd/resolve/stub-resolv.conf"}, nil)
	slowReader := func(line string) { // as a busy host reads the console
		if strings.HasPrefix(line, "PROBE filler ") {
			time.Sleep(10 * time.Millisecond)
		}
	}
	out := appBoot(t, img, "", slowReader)
	if code := exitCode(t, out); code != "3" {
		t.Errorf("exit code %s, want 3", code)
	}
	var argv, env, addrs, zombies, mounts []string
	var ids map[string]any
	var tty bool
	var dns, uptime, last string
	probeValue(t, out, "uptime", &uptime)
	t.Logf("the program started %s s after the kernel", uptime)
	probeValue(t, out, "argv", &argv)
	probeValue(t, out, "env", &env)
	probeValue(t, out, "ids", &ids)
	probeValue(t, out, "tty", &tty)
	probeValue(t, out, "addrs", &addrs)
	probeValue(t, out, "dns", &dns)
	probeValue(t, out, "zombies", &zombies)
	probeValue(t, out, "mounts", &mounts)
	probeValue(t, out, "last", &last) // queued output survives the exit
	if want := []string{"probe", "report", "a b", host}; !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	wantEnv := []string{"PATH=" + appinit.DefaultPath, "HOSTNAME=apphost", "TERM=vt220", "GREETING=hello world", "EMPTY=", "HOME=/home/app"}
	if !slices.Equal(env, wantEnv) {
		t.Errorf("env %q, want %q", env, wantEnv)
	}
	if got := fmt.Sprint(ids); got != "map[cwd:/work/dir gid:1000 groups:[29 2000] hostname:apphost uid:1000]" {
		t.Errorf("ids %s", got)
	}
	if !tty {
		t.Error("the console is not the program's controlling terminal, or the program does not lead its foreground process group")
	}
	if !slices.ContainsFunc(addrs, func(a string) bool { return strings.HasSuffix(a, " 10.0.2.15/24") }) {
		t.Errorf("no DHCP address 10.0.2.15: %q", addrs)
	}
	if !strings.HasSuffix(dns, "<nil>") || strings.HasPrefix(dns, "[]") {
		t.Errorf("DNS lookup of %s: %s", host, dns)
	}
	if len(zombies) > 0 {
		t.Errorf("zombies: %q", zombies)
	}
	for _, m := range []string{"/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp", "/sys/fs/cgroup",
		"/etc/hosts", "/etc/hostname", "/run/systemd/resolve/stub-resolv.conf"} {
		if !slices.Contains(mounts, m) {
			t.Errorf("%s is not mounted: %q", m, mounts)
		}
	}
	fsckClean(t, img)
	if out, _ := exec.Command("debugfs", "-R", "stat /etc/resolv.conf", img).CombinedOutput(); !strings.Contains(string(out), "Type: symlink") {
		t.Errorf("the image's /etc/resolv.conf symlink changed:\n%s", out)
	}
}

// appPowerdown: a numeric user without /etc/passwd, and QMP's
// system_powerdown reaching a program that traps SIGTERM.
func appPowerdown(t *testing.T) {
	t.Parallel()
	cfg := appinit.Config{Entrypoint: []string{"/usr/local/bin/probe"}, Cmd: []string{"trap"}, User: "1234:5678", WorkingDir: "/data"}
	img := appImage(t, "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", cfg, map[string]string{}, func(root string) {
		os.MkdirAll(filepath.Join(root, "data"), 0o755)
		os.Chown(filepath.Join(root, "data"), 1234, 5678)
	})
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	out := appBoot(t, img, sock, func(line string) {
		if line == "PROBE ready" {
			if err := qmpPowerdown(sock); err != nil {
				t.Errorf("QMP: %v", err)
			}
		}
	})
	if code := exitCode(t, out); code != "42" {
		t.Errorf("exit code %s, want the program's 42", code)
	}
	var env []string
	var ids map[string]any
	probeValue(t, out, "env", &env)
	probeValue(t, out, "ids", &ids)
	if want := []string{"PATH=" + appinit.DefaultPath, "HOSTNAME=" + appinit.DefaultHostname, "TERM=vt220", "HOME=/"}; !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	if got := fmt.Sprint(ids); got != "map[cwd:/data gid:5678 groups:[] hostname:c2vm uid:1234]" {
		t.Errorf("ids %s", got)
	}
	fsckClean(t, img)
	got, err := exec.Command("debugfs", "-R", "cat /data/stopped", img).Output()
	if err != nil || string(got) != "stopped by terminated" {
		t.Errorf("/data/stopped in the image: %q, %v", got, err)
	}
}

func qmpPowerdown(sock string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	dec := json.NewDecoder(c)
	var msg map[string]any
	if err := dec.Decode(&msg); err != nil { // greeting
		return err
	}
	for _, cmd := range []string{"qmp_capabilities", "system_powerdown"} {
		fmt.Fprintf(c, `{"execute":%q}`+"\n", cmd)
		for {
			msg = nil
			if err := dec.Decode(&msg); err != nil {
				return err
			}
			if _, ok := msg["event"]; !ok {
				break
			}
		}
		if _, ok := msg["return"]; !ok {
			return fmt.Errorf("%s: %v", cmd, msg)
		}
	}
	return nil
}

// appFailure boots a config the init must refuse, with the exit code and
// message docker run would give.
func appFailure(t *testing.T, cfg appinit.Config, code, msg string) {
	t.Parallel()
	img := appImage(t, "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", cfg, map[string]string{"etc/passwd": appPasswd}, nil)
	out := appBoot(t, img, "", nil)
	if got := exitCode(t, out); got != code {
		t.Errorf("exit code %s, want %s", got, code)
	}
	if !strings.Contains(out, msg) {
		t.Errorf("no %q in:\n%s", msg, tail(out, 2000))
	}
	fsckClean(t, img)
}
