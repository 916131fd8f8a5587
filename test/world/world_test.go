//go:build world

// Package world holds the end-to-end tests that need the test world
// (hack/testenv up): BuildKit, the local registry with base images, buildx,
// and the c2vm image built from this checkout. They build Dockerfiles into
// disks, boot them in QEMU and read what the guest printed.
package world

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/frontend"
	"github.com/c2vm/c2vm/internal/testbin"
	"github.com/moby/buildkit/client"
	"github.com/tonistiigi/fsutil"
)

var c2vm string

func TestMain(m *testing.M) {
	var cleanup func()
	c2vm, cleanup = testbin.Build("", "../../cmd/c2vm")
	// c2vm run keeps each VM's overlay in the state directory: one of the
	// run's own, removed at the end.
	state, err := os.MkdirTemp("/var/tmp", "c2vm-world-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	cleanup()
	if matrixDisk.dir != "" {
		os.RemoveAll(matrixDisk.dir)
	}
	os.Exit(code)
}

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run through make test, or eval \"$(hack/testenv up)\" first", name)
	}
	return v
}

// markerFiles is what the tests add to an example: a unit that prints, once
// the network is up, facts only the running guest knows, then powers off.
const markerScript = `#!/bin/sh
for i in $(seq 60); do ip4=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+\.' ); [ -n "$ip4" ] && break; sleep 1; done
echo "C2VM-MARKER git=$(git --version | cut -d' ' -f3) hostname=$(hostname) ipv4=${ip4:-none} kernel=$(uname -r) machine_id=$(cat /etc/machine-id)" >/dev/ttyS0
systemctl --no-block poweroff
`

var markerUnit = oneshotUnit("c2vm test marker", "/usr/local/sbin/c2vm-marker", "multi-user.target network-online.target", "network-online.target")

// oneshotUnit is a test's systemd unit: exec runs once at boot, after
// the units named.
func oneshotUnit(desc, exec, after, wants string) string {
	w := ""
	if wants != "" {
		w = "Wants=" + wants + "\n"
	}
	return "[Unit]\nDescription=" + desc + "\nAfter=" + after + "\n" + w +
		"\n[Service]\nType=oneshot\nExecStart=" + exec + "\n\n[Install]\nWantedBy=multi-user.target\n"
}

const markerLines = `
COPY c2vm-marker /usr/local/sbin/c2vm-marker
COPY c2vm-marker.service /etc/systemd/system/c2vm-marker.service
RUN mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /etc/systemd/system/c2vm-marker.service /etc/systemd/system/multi-user.target.wants/
`

// exampleContext copies an example's Dockerfile into a new context, with
// the marker unit added and an optional first line.
func exampleContext(t *testing.T, example, firstLine string) string {
	df, err := os.ReadFile(filepath.Join("../../examples", example, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := string(df) + markerLines
	if firstLine != "" {
		text = firstLine + "\n" + text
	}
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(text), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "c2vm-marker"), []byte(markerScript), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "c2vm-marker.service"), []byte(markerUnit), 0o644))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// parallelBoot marks a test whose time goes mostly to booting a VM: such
// tests run two at a time (hack/world-test gives go test -parallel 2),
// after all the others. QEMU before 8.1 runs a guest on one host thread
// (vmrun.TCGAccel), so a lone boot leaves the second core idle. A test
// that prunes the builder's cache, counts cached steps or compares digests
// of rebuilds must not call it: it runs alone, before these start.
func parallelBoot(t *testing.T) {
	t.Parallel()
}

// buildInProcess runs the frontend in this process with client.Build, as
// c2vm build does, and returns the vertices BuildKit reported.
func buildInProcess(t *testing.T, dir, out string, args map[string]string) (map[string]*client.Vertex, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := client.New(ctx, env(t, "BUILDKIT_HOST"))
	must(t, err)
	defer c.Close()
	fs, err := fsutil.NewFS(dir)
	must(t, err)
	attrs := map[string]string{}
	for k, v := range args {
		attrs["build-arg:"+k] = v
	}
	fe := &frontend.Frontend{ToolsRef: env(t, "C2VM_IMAGE")}
	ch := make(chan *client.SolveStatus)
	vertices := map[string]*client.Vertex{}
	var logs strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range ch {
			for _, v := range s.Vertexes {
				vertices[v.Name] = v
			}
			for _, l := range s.Logs {
				logs.Write(l.Data)
			}
		}
	}()
	_, err = c.Build(ctx, client.SolveOpt{
		Exports:       []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}},
		LocalMounts:   map[string]fsutil.FS{"context": fs, "dockerfile": fs},
		FrontendAttrs: attrs,
	}, "c2vm-test", fe.Build, ch)
	<-done
	if err != nil {
		l := logs.String()
		if len(l) > 3000 {
			l = l[len(l)-3000:]
		}
		t.Logf("build logs:\n%s", l)
	}
	return vertices, err
}

// boot runs a disk with firmware and returns the facts the guest's marker
// line gave.
func boot(t *testing.T, disk, firmware string) map[string]string {
	t.Helper()
	return bootWith(t, disk, "--firmware", firmware)
}

// bootWith runs a disk with extra c2vm run flags until the guest prints its
// marker line, and returns that line's key=value facts.
func bootWith(t *testing.T, disk string, flags ...string) map[string]string {
	t.Helper()
	start := time.Now()
	args := append([]string{"run", "--snapshot", "--expect", "C2VM-MARKER", "--timeout", "400s"}, flags...)
	out, err := exec.Command(c2vm, append(args, disk)...).CombinedOutput()
	if err != nil {
		t.Fatalf("boot %v: %v\n%s", flags, err, tail(string(out), 4000))
	}
	m := regexp.MustCompile(`C2VM-MARKER ([^\r\n]*)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no marker")
	}
	t.Logf("%v in %s: %s", flags, time.Since(start).Round(time.Second), m[0])
	facts := map[string]string{}
	for _, f := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(f, "=")
		facts[k] = v
	}
	return facts
}

// checkGuest asserts what a booted example must show: git installed, the
// hostname c2vm set, an IPv4 address from QEMU's DHCP server, and an
// machine-id made at boot.
func checkGuest(t *testing.T, facts map[string]string, hostname string) {
	t.Helper()
	if !regexp.MustCompile(`^2\.\d+\.\d+`).MatchString(facts["git"]) {
		t.Errorf("git --version gave %q", facts["git"])
	}
	if facts["hostname"] != hostname {
		t.Errorf("hostname %q, want %q", facts["hostname"], hostname)
	}
	if !strings.HasPrefix(facts["ipv4"], "10.0.2.") {
		t.Errorf("no DHCP address: %q", facts["ipv4"])
	}
	if len(facts["machine_id"]) != 32 {
		t.Errorf("machine-id %q was not generated at boot", facts["machine_id"])
	}
}

func TestInProcessDebian(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	out := t.TempDir()
	args := map[string]string{"C2VM_HOSTNAME": "c2vm-debian"}
	if _, err := buildInProcess(t, dir, out, args); err != nil {
		t.Fatal(err)
	}
	// UEFI only: the buildx tests boot their disks under BIOS and UEFI, and
	// the boot tests the assembly under both.
	checkGuest(t, boot(t, filepath.Join(out, "linux.img"), "uefi"), "c2vm-debian")

	// The same build again is served from BuildKit's cache.
	vertices, err := buildInProcess(t, dir, t.TempDir(), args)
	if err != nil {
		t.Fatal(err)
	}
	v := vertices["assemble disk"]
	if v == nil || !v.Cached {
		t.Errorf("second build ran the assembly again: %+v", v)
	}
}

// An Alpine filesystem with no kernel and no program: c2vm cannot boot it
// as a system nor run it as an app, and says both; asked for system mode,
// it names the distribution it cannot install a kernel into.
func TestUnsupportedDistro(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "os-release"), []byte("ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY os-release /etc/os-release\n"), 0o644))
	_, err := buildInProcess(t, dir, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot install them into Alpine Linux v3.20") || !strings.Contains(err.Error(), "names no program") {
		t.Fatalf("auto: got %v", err)
	}
	_, err = buildInProcess(t, dir, t.TempDir(), map[string]string{"C2VM_MODE": "system"})
	if err == nil || !strings.Contains(err.Error(), "cannot add a kernel to Alpine Linux v3.20") || !strings.Contains(err.Error(), "C2VM_MODE=app") {
		t.Fatalf("system: got %v", err)
	}
}

func TestFailingBootstrapStep(t *testing.T) {
	dir := t.TempDir()
	// Package sources that cannot answer: the kernel install fails. The
	// tree is copied onto scratch so that c2vm installs on top of it (with
	// debian:bookworm as the base, the kernel would go beneath the broken
	// sources, from the image's own).
	df := "FROM debian:bookworm AS broken\nRUN echo 'deb http://127.0.0.1:9/debian bookworm main' >/etc/apt/sources.list && rm -f /etc/apt/sources.list.d/*\n" +
		"FROM scratch\nCOPY --from=broken / /\n"
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
	_, err := buildInProcess(t, dir, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), `making Debian GNU/Linux 12 (bookworm) bootable failed in step "install kernel (debian)": it ended with exit code: 100`) {
		t.Fatalf("got %v", err)
	}
}

func TestBadOption(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	_, err := buildInProcess(t, dir, t.TempDir(), map[string]string{"C2VM_FORMATS": "qcow2"})
	if err == nil || !strings.Contains(err.Error(), "unknown c2vm option C2VM_FORMATS") {
		t.Fatalf("got %v", err)
	}
}

// buildx runs docker buildx build against the test world's builder.
func buildx(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"buildx", "build", "--progress=plain"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		if len(s) > 6000 {
			s = s[len(s)-6000:]
		}
		t.Fatalf("docker buildx build %v: %v\n%s", args, err, s)
	}
	return string(out)
}

func TestBuildxSyntaxLine(t *testing.T) {
	parallelBoot(t)
	dir := exampleContext(t, "basic", "# syntax="+env(t, "C2VM_IMAGE"))
	out := t.TempDir()
	buildx(t, "--build-arg", "C2VM_HOSTNAME=c2vm-basic", "-o", "type=local,dest="+out, dir)
	checkGuest(t, boot(t, filepath.Join(out, "linux.img"), "uefi"), "c2vm-basic")
}

func TestBuildxBuildkitSyntaxArg(t *testing.T) {
	parallelBoot(t)
	dir := exampleContext(t, "basic", "")
	out := t.TempDir()
	buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_FORMAT=qcow2",
		"--platform", "linux/amd64", "-o", out, dir)
	checkGuest(t, boot(t, filepath.Join(out, "linux.qcow2"), "bios"), "c2vm")
}

// TestBuildxCallCheck: --call check runs BuildKit's Dockerfile linter
// through c2vm, as with the stock frontend; without the lint subrequest it
// fails with "unsupported request frontend.lint".
func TestBuildxCallCheck(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian:bookworm as base\nRUN true\n"), 0o644))
	cmd := exec.Command("docker", "buildx", "build", "--call", "check,format=json",
		"--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), dir)
	out, _ := cmd.CombinedOutput() // warnings make buildx exit non-zero
	if !strings.Contains(string(out), "FromAsCasing") || strings.Contains(string(out), "unsupported request") {
		t.Errorf("--call check did not report the FromAsCasing warning:\n%s", tail(string(out), 3000))
	}
}

func TestBuildxOutline(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	cmd := exec.Command("docker", "buildx", "build", "--call", "outline,format=json",
		"--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var o struct {
		Args []struct{ Name, Value string }
	}
	must(t, json.Unmarshal(out, &o))
	got := map[string]string{}
	for _, a := range o.Args {
		got[a.Name] = a.Value
	}
	for name, def := range map[string]string{"C2VM_FORMAT": "raw", "C2VM_DISK_SIZE": "auto", "C2VM_FIRMWARE": "hybrid", "C2VM_HOSTNAME": "c2vm"} {
		if v, ok := got[name]; !ok || v != def {
			t.Errorf("outline: %s = %q (listed %v), want %q", name, v, ok, def)
		}
	}
}

// TestTargetAndNamedContext builds a chosen stage of a Dockerfile whose base
// is a named context, and reads the result from the disk without booting.
func TestTargetAndNamedContext(t *testing.T) {
	dir := t.TempDir()
	df := "FROM base AS vm\nRUN echo vm >/etc/c2vm-stage\nFROM vm AS other\nRUN echo other >/etc/c2vm-stage\n"
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
	out := t.TempDir()
	buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--target", "vm",
		"--build-context", "base=docker-image://"+env(t, "C2VM_REGISTRY")+"/library/debian:bookworm", "-o", out, dir)
	disk := filepath.Join(out, "linux.img")
	var table struct {
		Partitiontable struct {
			Partitions []struct {
				Start int64
				Type  string
			}
		}
	}
	js, err := exec.Command("sfdisk", "-J", disk).Output()
	must(t, err)
	must(t, json.Unmarshal(js, &table))
	parts := table.Partitiontable.Partitions
	root := parts[len(parts)-1]
	got, err := exec.Command("debugfs", "-R", "cat /etc/c2vm-stage", fmt.Sprintf("%s?offset=%d", disk, root.Start*512)).Output()
	must(t, err)
	if strings.TrimSpace(string(got)) != "vm" {
		t.Errorf("stage file says %q, want vm (--target ignored?)", got)
	}
}

// TestMoreDistros boots the other supported releases: Debian 13
// (systemd-resolved and systemd-repart are separate packages there) and,
// with C2VM_DISTROS=all (make test-distros, whose world has their base
// images), Debian 11 and Ubuntu 20.04 (Linux 5.4: an lz4 initramfs) and
// 22.04.
func TestMoreDistros(t *testing.T) {
	parallelBoot(t)
	type distro struct{ from, kernel string }
	cases := []distro{{"debian:trixie", "amd64"}}
	if os.Getenv("C2VM_DISTROS") == "all" {
		cases = append(cases, distro{"debian:bullseye", "amd64"}, distro{"ubuntu:20.04", "generic"}, distro{"ubuntu:22.04", "generic"})
	} else {
		t.Log("Debian 11 and Ubuntu 20.04 and 22.04 run in make test-distros (C2VM_DISTROS=all)")
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			dir := exampleContext(t, "debian", "")
			df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
			must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(strings.Replace(string(df), "FROM debian:bookworm", "FROM "+c.from, 1)), 0o644))
			out := t.TempDir()
			if _, err := buildInProcess(t, dir, out, nil); err != nil {
				t.Fatal(err)
			}
			facts := boot(t, filepath.Join(out, "linux.img"), "uefi")
			checkGuest(t, facts, "c2vm")
			if !strings.HasSuffix(facts["kernel"], c.kernel) {
				t.Errorf("kernel %q, want a %s kernel", facts["kernel"], c.kernel)
			}
		})
	}
}
