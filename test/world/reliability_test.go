//go:build world && reliability

package world

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/powercut"
)

// The tests of docs/reliability.md that take long: make test-reliability
// runs them (tags world,reliability). Each says what it measured with t.Log,
// under "FIGURE", for the docs.

const epoch = "1700000000"

// relCase is one of the six builds run at once.
type relCase struct {
	name string
	dir  string
	args []string
}

// sixBuilds are different Dockerfiles and options: Debian and Ubuntu system
// mode, an app, access options, several formats, an older Debian.
func sixBuilds(t *testing.T) []relCase {
	img := env(t, "C2VM_IMAGE")
	_, pub := sshKey(t, "rel")
	ctx := func(df string) string { return writeContext(t, map[string]string{"Dockerfile": df}) }
	base := []string{"--build-arg", "BUILDKIT_SYNTAX=" + img, "--build-arg", "SOURCE_DATE_EPOCH=" + epoch}
	return []relCase{
		{"debian12", ctx("FROM debian:bookworm\nRUN echo rel-a >/etc/c2vm-rel\n"), base},
		{"ubuntu24", ctx("FROM ubuntu:24.04\nRUN echo rel-b >/etc/c2vm-rel\n"), base},
		{"app", ctx("FROM debian:bookworm-slim\nCMD [\"/bin/echo\", \"rel-app\"]\n"), append(append([]string{}, base...), "--build-arg", "C2VM_MODE=app")},
		{"access", ctx("FROM debian:bookworm\n"), append(append([]string{}, base...), "--build-arg", "C2VM_USER=dev", "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS="+pub)},
		{"formats", ctx("FROM debian:trixie\n"), append(append([]string{}, base...), "--build-arg", "C2VM_FORMAT=raw,qcow2,vmdk")},
		{"debian11", ctx("FROM debian:bullseye\n"), base},
	}
}

// digests returns the SHA-256 of every file in an output directory.
func digests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return out
}

// buildkitdPID is the test world's daemon.
func buildkitdPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cacheDir(), "testenv", "buildkitd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// rssKiB reads a process's resident memory.
func rssKiB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// peakRSS samples pid's RSS until stop is closed.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	res := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			if r := rssKiB(pid); r > peak {
				peak = r
			}
			select {
			case <-stop:
				res <- peak
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return res
}

// buildNoCache builds with nothing taken from BuildKit's cache.
func buildNoCache(c relCase, out string) error {
	b, err := exec.Command("docker", append(append([]string{"buildx", "build", "--no-cache", "--progress=plain"}, c.args...), "-o", out, c.dir)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", c.name, err, tail(string(b), 2000))
	}
	return nil
}

// TestConcurrentBuilds builds six different disks at once through one
// BuildKit with nothing cached, then each alone, again with nothing cached:
// every build succeeds and every disk is byte-identical to its build alone.
func TestConcurrentBuilds(t *testing.T) {
	cases := sixBuilds(t)
	outs := make([]string, len(cases))
	errs := make([]error, len(cases))
	stop := make(chan struct{})
	peak := peakRSS(buildkitdPID(t), stop)
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range cases {
		outs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = buildNoCache(c, outs[i])
		}()
	}
	wg.Wait()
	close(stop)
	t.Logf("FIGURE six builds at once, nothing cached: %s wall, buildkitd peak RSS %d MiB", time.Since(start).Round(time.Second), <-peak/1024)
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	start = time.Now()
	for i, c := range cases {
		alone := t.TempDir()
		if err := buildNoCache(c, alone); err != nil {
			t.Fatal(err)
		}
		want, got := digests(t, alone), digests(t, outs[i])
		if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
			t.Errorf("%s: built at once %v, alone %v", c.name, got, want)
		}
	}
	t.Logf("FIGURE the same six one after another, nothing cached: %s wall", time.Since(start).Round(time.Second))
}

// buildUntil runs a build and calls kill once a progress line holds mark;
// it returns the build's error.
func buildUntil(t *testing.T, mark string, kill func(), args ...string) error {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"buildx", "build", "--progress=plain"}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if !killed && strings.Contains(sc.Text(), mark) {
				killed = true
				time.Sleep(2 * time.Second) // inside the step, not at its start
				kill()
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	if !killed {
		t.Errorf("the build never showed %q", mark)
	}
	return err
}

// restartWorld starts the daemons hack/testenv up finds stopped.
func restartWorld(t *testing.T) {
	t.Helper()
	testenv, err := filepath.Abs("../../hack/testenv")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testenv, "up").CombinedOutput(); err != nil {
		t.Fatalf("hack/testenv up: %v\n%s", err, tail(string(out), 2000))
	}
}

// TestBuilderKilled kills buildkitd (SIGKILL) during "assemble disk" and
// during the export, and the c2vm process inside the assembly step; after
// each, the same build succeeds and its disk is identical to a clean
// build's: no corrupt cache entry survives.
func TestBuilderKilled(t *testing.T) {
	c := sixBuilds(t)[0]
	clean := t.TempDir()
	if err := buildNoCache(c, clean); err != nil {
		t.Fatal(err)
	}
	want := digests(t, clean)
	for _, k := range []struct{ name, mark string }{
		{"buildkitd during assembly", "assemble disk"},
		{"buildkitd during the export", "exporting to client directory"},
		{"c2vm assemble in its step", "assemble disk"},
	} {
		t.Run(k.name, func(t *testing.T) {
			kill := func() { syscall.Kill(buildkitdPID(t), syscall.SIGKILL) }
			if strings.HasPrefix(k.name, "c2vm") {
				kill = func() { exec.Command("pkill", "-KILL", "-f", "^c2vm assemble").Run() }
			}
			killed := append([]string{"--no-cache"}, c.args...)
			if err := buildUntil(t, k.mark, kill, append(killed, "-o", t.TempDir(), c.dir)...); err == nil && !strings.HasPrefix(k.name, "buildkitd during the export") {
				t.Errorf("the build survived the kill")
			}
			restartWorld(t)
			again := t.TempDir()
			buildx(t, append(c.args, "-o", again, c.dir)...)
			if got := digests(t, again); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after the kill: %v, a clean build gave %v", got, want)
			}
		})
	}
}

// TestSoak rebuilds one app-mode Dockerfile fifty times, its last line
// changing each time, so each build runs that line, the assembly and the
// export: the builder's disk use stays within its GC limits, no temporary
// file of BuildKit's and no process under buildkitd is left, and
// buildkitd's memory stays flat. (The machine may run other work: only
// what BuildKit and c2vm make counts.)
func TestSoak(t *testing.T) {
	img := env(t, "C2VM_IMAGE")
	dir := t.TempDir()
	state := filepath.Join(cacheDir(), "buildkit")
	tmpBefore, usedBefore := ownTemps(), dirKiB(state)
	var rss []int64
	start := time.Now()
	for i := range 50 {
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf("FROM debian:bookworm-slim\nCMD [\"/bin/true\"]\nRUN echo %d >/etc/c2vm-soak\n", i)), 0o644))
		out := t.TempDir()
		buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+img, "--build-arg", "C2VM_MODE=app", "-o", out, dir)
		os.RemoveAll(out)
		rss = append(rss, rssKiB(buildkitdPID(t)))
	}
	used := dirKiB(state)
	var every10 []string
	for i := 9; i < len(rss); i += 10 {
		every10 = append(every10, fmt.Sprint(rss[i]/1024))
	}
	t.Logf("FIGURE soak: 50 rebuilds in %s; buildkitd RSS after 10, 20 … 50 builds: %s MiB; BuildKit state %d MiB before, %d MiB after",
		time.Since(start).Round(time.Second), strings.Join(every10, ", "), usedBefore/1024, used/1024)
	if rss[49] > rss[9]*3/2+64*1024 {
		t.Errorf("buildkitd's memory grew from %d to %d KiB over 40 rebuilds", rss[9], rss[49])
	}
	// BuildKit's GC bounds its cache records (maxUsedSpace); du also counts
	// what GC does not manage, so the bound checked is no growth.
	if used > usedBefore+2<<20 {
		t.Errorf("BuildKit's state grew from %d to %d MiB over the soak", usedBefore/1024, used/1024)
	}
	var left []string
	for n := range ownTemps() {
		if !tmpBefore[n] {
			left = append(left, n)
		}
	}
	if len(left) > 0 {
		t.Errorf("temporary files left after the soak: %q", left)
	}
	if procs := descendants(buildkitdPID(t)); len(procs) > 0 {
		t.Errorf("processes left under buildkitd: %q", procs)
	}
}

// ownTemps are the entries of /tmp and /var/tmp that BuildKit makes
// (buildkit-mount*); c2vm's steps run in BuildKit's containers, whose /tmp
// is not the host's.
func ownTemps() map[string]bool {
	names := map[string]bool{}
	for _, d := range []string{"/tmp", "/var/tmp"} {
		es, _ := os.ReadDir(d)
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "buildkit") {
				names[filepath.Join(d, e.Name())] = true
			}
		}
	}
	return names
}

// descendants lists the processes below pid, as "PID comm".
func descendants(pid int) []string {
	parent, comm := map[int]int{}, map[int]string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		i := strings.LastIndexByte(string(b), ')')
		if err != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
			comm[p] = string(b[strings.IndexByte(string(b), '(')+1 : i])
		}
	}
	var out []string
	for p := range parent {
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				out = append(out, fmt.Sprintf("%d %s", p, comm[p]))
				break
			}
		}
	}
	return out
}

// dirKiB is du's size of d; files vanishing during the walk (BuildKit's
// GC) make du fail, but its total still counts.
func dirKiB(d string) int64 {
	out, _ := exec.Command("du", "-sk", d).Output()
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// hostKeyMarker reports whether every host key pair is whole (the public
// key is the private key's), how many there are, the root's size and
// failed units.
const hostKeyMarker = `#!/bin/sh
ok=yes; n=0
for k in /etc/ssh/ssh_host_*_key; do
	[ -e "$k" ] || continue
	n=$((n+1))
	[ "$(ssh-keygen -y -f "$k" 2>/dev/null | cut -d' ' -f1,2)" = "$(cut -d' ' -f1,2 "$k.pub" 2>/dev/null)" ] || ok=no
done
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
echo "C2VM-MARKER hostkeys=$n keys_ok=$ok app=$(systemctl is-active c2vm-app.service) rootfs_bytes=$(findmnt -bno SIZE /) failed=${failed:-none}" >/dev/ttyS0
systemctl --no-block poweroff
`

// TestPowerCutsHostKeys cuts a built Debian VM's power ten times during its
// first boot (root growth, host key generation, the image's CMD starting as
// c2vm-app.service), then boots it whole: the host keys are there and
// whole, the service runs, the root filled the disk once, no unit
// failed. Then the VM's disk is enlarged and the power cut again during
// that boot: the next boot grows the root again, and after its clean
// power-off e2fsck finds the root clean.
func TestPowerCutsHostKeys(t *testing.T) {
	_, pub := sshKey(t, "cut")
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM debian:bookworm\nCMD [\"sleep\", \"infinity\"]\n" + markerLines,
		"c2vm-marker": hostKeyMarker, "c2vm-marker.service": markerUnit})
	os.Chmod(filepath.Join(dir, "c2vm-marker"), 0o755)
	out := t.TempDir()
	buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS="+pub, "-o", out, dir)
	disk := filepath.Join(out, "linux.img")
	whole := func(want int64, flags ...string) {
		m := bootWithState(t, disk, append([]string{"--name", "keys"}, flags...)...)
		fs, _ := strconv.ParseInt(m["rootfs_bytes"], 10, 64)
		if m["keys_ok"] != "yes" || m["hostkeys"] == "0" || m["app"] != "active" || m["failed"] != "none" || fs < want*9/10 || fs > want {
			t.Errorf("after the power cuts: %v (root %d bytes, want about %d)", m, fs, want)
		}
	}
	powercut.Cuts(t, c2vm, "keys", disk, 10, powercut.FirstBoot)
	whole(8 << 30)
	powercut.Cuts(t, c2vm, "keys", disk, 2, powercut.FirstBoot, "--disk-size", "12G")
	whole(12<<30, "--disk-size", "12G")
	raw := filepath.Join(t.TempDir(), "raw.img")
	overlay := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm", "vms", "keys", "overlay.qcow2")
	if b, err := exec.Command("qemu-img", "convert", "-O", "raw", overlay, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	if b, err := exec.Command("e2fsck", "-fn", rootFS(t, raw)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the clean power-off: %v\n%s", err, b)
	}
}

// bootWithState is bootWith for a named VM: its overlay keeps the guest's
// writes.
func bootWithState(t *testing.T, disk string, flags ...string) map[string]string {
	t.Helper()
	out, err := exec.Command(c2vm, append(append([]string{"run", "--expect", "C2VM-MARKER", "--timeout", "600s"}, flags...), disk)...).CombinedOutput()
	if err != nil {
		t.Fatalf("boot %v: %v\n%s", flags, err, tail(string(out), 3000))
	}
	facts := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "C2VM-MARKER "); i >= 0 {
			for _, f := range strings.Fields(l[i+len("C2VM-MARKER "):]) {
				k, v, _ := strings.Cut(f, "=")
				facts[k] = v
			}
		}
	}
	return facts
}
