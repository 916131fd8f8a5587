//go:build world

package world

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docker buildx bake of an example target, as docker-bake.hcl documents:
// the c2vm image from this checkout as a named context, the example built
// through it; the disk boots to a login prompt.
func TestBakeExample(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("docker", "buildx", "bake", "--progress=plain", "-f", "docker-bake.hcl", "debian",
		"--set", "debian.output=type=local,dest="+out)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bake: %v\n%s", err, tail(string(b), 4000))
	}
	run := exec.Command(c2vm, "run", "--snapshot", "--expect", "login:", "--quit-on-expect", "--timeout", "400s", filepath.Join(out, "linux.img"))
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("boot: %v\n%s", err, tail(string(b), 3000))
	}
}

// Scale-out through BuildKit's own cache: a build exports its cache to the
// registry, the builder's local cache is pruned, and the same build with
// --cache-from finds the kernel install, the guest configuration and the
// assembly there, and gives a byte-identical disk.
func TestRegistryCache(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	ref := env(t, "C2VM_REGISTRY") + "/c2vm-test/cache:debian"
	syntax := "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE")
	first := t.TempDir()
	buildx(t, "--build-arg", syntax, "--cache-to", "type=registry,ref="+ref+",mode=max,registry.insecure=true", "-o", first, dir)
	buildctl := filepath.Join(cacheDir(), "bin", "buildctl")
	if b, err := exec.Command(buildctl, "--addr", env(t, "BUILDKIT_HOST"), "prune", "--all").CombinedOutput(); err != nil {
		t.Fatalf("prune: %v\n%s", err, b)
	}
	second := t.TempDir()
	log := buildx(t, "--build-arg", syntax, "--cache-from", "type=registry,ref="+ref+",registry.insecure=true", "-o", second, dir)
	cached := cachedSteps(log)
	for _, step := range []string{"install kernel", "configure guest", "assemble disk"} {
		if !cached[step] {
			t.Errorf("%q was not served from the registry cache", step)
		}
	}
	if t.Failed() {
		t.Logf("second build:\n%s", tail(log, 12000))
	}
	if a, b := fileSum(t, filepath.Join(first, "linux.img")), fileSum(t, filepath.Join(second, "linux.img")); a != b {
		t.Errorf("the disks differ: %s %s", a, b)
	}
}

// cachedSteps reads buildx's plain progress: which named steps came from
// the cache. BuildKit reports a cached step as CACHED unless its result must
// be materialised — the disk the export copies, and the layers it lies on —
// in which case it shows the cache's blobs being pulled and extracted. A
// step that ran instead prints its process's output as "#N SECONDS text";
// such a line anywhere in the step means it ran.
func cachedSteps(log string) map[string]bool {
	steps := []string{"install kernel", "configure guest", "assemble disk"}
	names := map[string]string{}
	cached, pulled, ran := map[string]bool{}, map[string]bool{}, map[string]bool{}
	line := regexp.MustCompile(`(?m)^#(\d+) (.+)$`)
	output := regexp.MustCompile(`^\d+\.\d+ `)
	for _, m := range line.FindAllStringSubmatch(log, -1) {
		id, rest := m[1], strings.TrimSpace(m[2])
		switch {
		case names[id] == "":
			names[id] = rest
		case rest == "CACHED":
			cached[id] = true
		case output.MatchString(rest):
			ran[id] = true
		case strings.HasPrefix(rest, "extracting sha256:"):
			pulled[id] = true
		}
	}
	served := map[string]bool{}
	for id, name := range names {
		for _, step := range steps {
			if strings.Contains(name, step) && !ran[id] && (cached[id] || pulled[id]) {
				served[step] = true
			}
		}
	}
	return served
}

func fileSum(t *testing.T, p string) string {
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

func cacheDir() string {
	if d := os.Getenv("C2VM_CACHE"); d != "" {
		return d
	}
	return "/var/cache/c2vm"
}

// Reproducible from scratch: the same Dockerfile built twice with nothing
// from BuildKit's cache (packages installed again, the initramfs made
// again, the signed shim and GRUB fetched again) gives the same disk at the
// same SOURCE_DATE_EPOCH.
func TestReproducibleFromScratch(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM debian:bookworm\nRUN echo again >/etc/c2vm-again\n"})
	var sums []string
	for range 2 {
		out := t.TempDir()
		buildx(t, "--no-cache", "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-o", out, dir)
		sums = append(sums, fileSum(t, filepath.Join(out, "linux.img")))
		if !readMeta(t, out).SecureBoot {
			t.Errorf("the disk does not have the signed chain (c2vm.json)")
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds from scratch: %s and %s", sums[0], sums[1])
	}
}
