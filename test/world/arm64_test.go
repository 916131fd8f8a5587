//go:build world

package world

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// arm64 disks through BuildKit: the Dockerfile's steps and the kernel
// install run emulated (qemu-user, binfmt_misc), c2vm's assembly runs on
// the builder's own platform, and the disks boot on qemu-system-aarch64
// -M virt with AAVMF under TCG. make test-arm64 runs them (C2VM_ARM64=1,
// with the arm64 base images in the test world): each boot takes minutes.

func needARM64World(t *testing.T) {
	if os.Getenv("C2VM_ARM64") == "" {
		t.Skip("C2VM_ARM64 is not set: make test-arm64 runs the arm64 world tests")
	}
}

// armMarker prints, once the network is up and the serial getty runs,
// facts only the running arm64 guest knows, then powers off after the
// getty has had time to print its prompt.
const armMarker = `#!/bin/sh
for i in $(seq 90); do ip4=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+\.' ); [ -n "$ip4" ] && break; sleep 1; done
for i in $(seq 30); do systemctl -q is-active serial-getty@ttyAMA0.service && break; sleep 1; done
sleep 2
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
echo "C2VM-ARM machine=$(uname -m) ipv4=${ip4:-none} kernel=$(uname -r) getty=$(systemctl is-active serial-getty@ttyAMA0.service) failed=${failed:-none}" >/dev/ttyAMA0
sleep 5
systemctl --no-block poweroff
`

var armUnit = oneshotUnit("c2vm arm64 marker", "/usr/local/sbin/c2vm-arm", "multi-user.target network-online.target", "network-online.target")

var armLine = regexp.MustCompile(`C2VM-ARM ([^\r\n]*)`)

// bootARM boots an arm64 system disk until its marker line and returns
// its facts and the console.
func bootARM(t *testing.T, disk string) (map[string]string, string) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command(c2vm, "run", "--snapshot", "--expect", "C2VM-ARM", "--timeout", "1200s", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("boot %s: %v\n%s", disk, err, tail(string(out), 4000))
	}
	m := armLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no marker\n%s", tail(string(out), 3000))
	}
	t.Logf("arm64 boot in %s: %s", time.Since(start).Round(time.Second), m[0])
	facts := map[string]string{}
	for _, f := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(f, "=")
		facts[k] = v
	}
	return facts, string(out)
}

// A Debian 12 Dockerfile built with --platform linux/arm64 boots on the
// virt machine under AAVMF to its login prompt on ttyAMA0, with Debian's
// arm64 kernel, a DHCP address and no failed unit; the assembly ran on
// this amd64 builder, not emulated.
func TestARM64DebianSystem(t *testing.T) {
	needARM64World(t)
	dir := writeContext(t, map[string]string{
		"c2vm-arm": armMarker, "c2vm-arm.service": armUnit,
		"Dockerfile": "FROM debian:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends procps && rm -rf /var/lib/apt/lists/*\n" +
			"COPY c2vm-arm /usr/local/sbin/c2vm-arm\nCOPY c2vm-arm.service /etc/systemd/system/c2vm-arm.service\n" +
			"RUN chmod 0755 /usr/local/sbin/c2vm-arm && mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /etc/systemd/system/c2vm-arm.service /etc/systemd/system/multi-user.target.wants/\n",
	})
	out := t.TempDir()
	log := buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--platform", "linux/arm64", "-o", out, dir)
	if m := readMeta(t, out); m.Arch != "arm64" || m.Firmware != "uefi" {
		t.Errorf("c2vm.json: %+v", m)
	}
	checkNativeAssembly(t, log)
	facts, console := bootARM(t, filepath.Join(out, "linux.img"))
	if facts["machine"] != "aarch64" || !strings.HasSuffix(facts["kernel"], "-arm64") || !strings.HasPrefix(facts["ipv4"], "10.0.2.") ||
		facts["getty"] != "active" || facts["failed"] != "none" {
		t.Errorf("arm64 guest: %v", facts)
	}
	if !regexp.MustCompile(`(?m)login: *`).MatchString(console) {
		t.Errorf("no login prompt on the console:\n%s", tail(console, 2000))
	}
}

// checkNativeAssembly asserts from buildx's plain progress that the
// assembly step ran without emulation: BuildKit names an emulated step's
// platform ("[linux/arm64 ...]"), and the assembly must show none.
func checkNativeAssembly(t *testing.T, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "assemble disk") && strings.Contains(line, "linux/arm64") {
			t.Errorf("the assembly ran emulated: %s", line)
		}
	}
	if !strings.Contains(log, "assemble disk") {
		t.Errorf("no assembly step in the build log")
	}
}

// crossReportImage cross-compiles reportGo for the target platform on the
// builder's (the test world has Go for amd64 only), as Go projects do.
const crossReportImage = `FROM --platform=$BUILDPLATFORM golang:1.26-trixie AS build
ARG TARGETARCH
WORKDIR /src
COPY report.go .
RUN CGO_ENABLED=0 GOARCH=$TARGETARCH go build -o /report report.go
FROM scratch
COPY --from=build /report /report
ENTRYPOINT ["/report", "first"]
`

// A FROM scratch Go program built for arm64 runs in app mode with c2vm's
// arm64 kernel and init, and c2vm run returns its exit code; built for
// both platforms at once, buildx writes one disk per platform and each
// runs on its own machine.
func TestARM64AppAndMultiPlatform(t *testing.T) {
	needARM64World(t)
	dir := writeContext(t, map[string]string{"report.go": reportGo, "Dockerfile": crossReportImage})
	out := t.TempDir()
	log := buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--platform", "linux/amd64,linux/arm64", "-o", out, dir)
	checkNativeAssembly(t, log)
	for _, arch := range []string{"amd64", "arm64"} {
		sub := filepath.Join(out, "linux_"+arch)
		if m := readMeta(t, sub); m.Arch != arch && !(arch == "amd64" && m.Arch == "") || m.Mode != "app" {
			t.Errorf("%s: c2vm.json %+v", arch, m)
		}
		start := time.Now()
		code, console := runApp(t, filepath.Join(sub, "linux.img"), "--snapshot", "--timeout", "900s")
		t.Logf("%s app boot in %s", arch, time.Since(start).Round(time.Second))
		if code != 3 || !strings.Contains(console, `C2VM-REPORT {"args":["/report","first"]`) {
			t.Errorf("%s: exit %d, want 3\n%s", arch, code, tail(console, 3000))
		}
	}
}

// A platform c2vm makes no disk for fails the build with one error naming
// the platforms it does make disks for, before anything is built.
func TestUnsupportedPlatform(t *testing.T) {
	dir := writeContext(t, map[string]string{"hello": "hi\n", "Dockerfile": "FROM scratch\nCOPY hello /hello\nCMD [\"/hello\"]\n"})
	cmd := exec.Command("docker", "buildx", "build", "--progress=plain", "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"),
		"--platform", "linux/riscv64", "-o", t.TempDir(), dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot make a disk for the platform linux/riscv64") ||
		!strings.Contains(string(out), "linux/amd64 or linux/arm64") {
		t.Fatalf("riscv64 build: %v\n%s", err, tail(string(out), 3000))
	}
}

// A containerDisk built for both platforms and pushed with type=registry
// is a multi-arch index: KubeVirt on an arm64 node pulls the arm64 disk,
// whose image config says arm64, and whose c2vm.json says so too.
func TestARM64ContainerDiskIndex(t *testing.T) {
	needARM64World(t)
	dir := writeContext(t, map[string]string{"report.go": reportGo, "Dockerfile": crossReportImage})
	ref := env(t, "C2VM_REGISTRY") + "/c2vm-test/containerdisk-multi:t"
	buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_FORMAT=containerdisk",
		"--platform", "linux/amd64,linux/arm64", "--output", "type=registry,name="+ref+",registry.insecure=true", dir)
	raw, err := crane(t, "manifest", ref).Output()
	must(t, err)
	var index struct {
		Manifests []struct {
			Platform struct{ OS, Architecture string }
		}
	}
	must(t, json.Unmarshal(raw, &index))
	var got []string
	for _, m := range index.Manifests {
		// buildx's provenance attestations are entries for unknown/unknown.
		if m.Platform.OS != "unknown" {
			got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "linux/amd64,linux/arm64" {
		t.Fatalf("%s lists %v, want linux/amd64 and linux/arm64:\n%s", ref, got, raw)
	}
	cfgJSON, err := crane(t, "config", ref, "--platform", "linux/arm64").Output()
	must(t, err)
	var cfg struct{ OS, Architecture string }
	must(t, json.Unmarshal(cfgJSON, &cfg))
	if cfg.Architecture != "arm64" {
		t.Errorf("the arm64 entry's config says %s", cfgJSON)
	}
	meta, err := crane(t, "export", ref, "-", "--platform", "linux/arm64").Output()
	must(t, err)
	if !strings.Contains(string(meta), `"arch": "arm64"`) {
		t.Errorf("the arm64 containerDisk's c2vm.json does not say arm64")
	}
}
