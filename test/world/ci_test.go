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

// cachedSteps reads buildx's plain progress: which named steps were CACHED.
func cachedSteps(log string) map[string]bool {
	names := map[string]string{}
	cached := map[string]bool{}
	name := regexp.MustCompile(`(?m)^#(\d+) (.+)$`)
	for _, m := range name.FindAllStringSubmatch(log, -1) {
		id, rest := m[1], strings.TrimSpace(m[2])
		switch {
		case rest == "CACHED":
			for _, step := range []string{"install kernel", "configure guest", "assemble disk"} {
				if strings.Contains(names[id], step) {
					cached[step] = true
				}
			}
		case names[id] == "":
			names[id] = rest
		}
	}
	return cached
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
