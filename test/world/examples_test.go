//go:build world && examples

package world

// The examples built and booted as their READMEs say: make test-examples
// (hack/examples-test), not make test, as devbox downloads several GB and
// the run takes over an hour with TCG.

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExamples(t *testing.T) {
	key, pub := sshKey(t, "examples")
	syntax := "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE")
	// devbox-ui builds FROM the devbox image, passed as a named context as
	// bake does: the plain image goes to the test world's registry.
	devboxImage := env(t, "C2VM_REGISTRY") + "/c2vm-examples/devbox:test"
	ca := hostCA(t)
	buildx(t, slices.Concat(ca, []string{"--output", "type=image,name=" + devboxImage + ",push=true,registry.insecure=true", "../../examples/devbox"})...)
	access := []string{"--build-arg", syntax, "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS=" + pub}
	devbox := slices.Concat(access, []string{"--build-arg", "C2VM_USER=vmuser", "--build-arg", "C2VM_SUDO_NOPASSWD=1"})

	t.Run("basic", func(t *testing.T) {
		out := t.TempDir()
		buildx(t, slices.Concat(access, []string{"-o", out, "../../examples/basic"})...)
		g := bootSSH(t, filepath.Join(out, "linux.img"))
		if got := g.waitSSH(key, "root", "git --version", 15*time.Minute); !strings.HasPrefix(got, "git version 2.") {
			t.Errorf("git --version: %q", got)
		}
		g.stop()
	})
	t.Run("devbox", func(t *testing.T) {
		out := t.TempDir()
		buildx(t, slices.Concat(devbox, ca, []string{"-o", out, "../../examples/devbox"})...)
		g := bootSSH(t, filepath.Join(out, "linux.img"), "--memory", "3G")
		defer g.stop()
		g.waitSSH(key, "vmuser", "true", 20*time.Minute)
		for _, c := range []struct{ cmd, want string }{
			{"java -version 2>&1", "openjdk version"}, {"mvn -v", "Apache Maven"}, {"node -v", "v"},
			{"cargo -V", "cargo "}, {"deno -V", "deno "}, {"docker info --format '{{.ServerVersion}} {{.Driver}}'", "."},
		} {
			got, err := g.ssh(key, "vmuser", c.cmd)
			if err != nil || !strings.Contains(got, c.want) {
				t.Errorf("%s: %v\n%s", c.cmd, err, got)
			} else {
				t.Logf("%s: %s", c.cmd, strings.SplitN(strings.TrimSpace(got), "\n", 2)[0])
			}
		}
	})
	t.Run("devbox-ui", func(t *testing.T) {
		out := t.TempDir()
		buildx(t, slices.Concat(devbox, []string{"--build-context", "devbox=docker-image://" + devboxImage, "-o", out, "../../examples/devbox-ui"})...)
		qmp := filepath.Join(t.TempDir(), "ui.sock")
		g := bootSSH(t, filepath.Join(out, "linux.img"), "--memory", "3G", "--qmp", qmp)
		defer g.stop()
		g.waitSSH(key, "vmuser", "true", 20*time.Minute)
		greeter := g.waitSSH(key, "vmuser", "for i in $(seq 120); do pgrep -a lightdm-gtk-gre && exit 0; sleep 5; done; systemctl status display-manager; exit 1", 15*time.Minute)
		t.Logf("greeter: %s", strings.TrimSpace(greeter))
		time.Sleep(30 * time.Second) // let it paint
		shot := filepath.Join(t.ArtifactDir(), "devbox-ui.png")
		screendump(t, qmp, shot)
		colours, w, h := distinctColours(t, shot)
		t.Logf("screenshot %s: %dx%d, %d colours", shot, w, h, colours)
		if colours < 64 {
			t.Errorf("the screen has %d colours: a text console or a blank screen, not the greeter (%s)", colours, shot)
		}
	})
}

// hostCA lets the Debian-based examples trust C2VM_EXAMPLES_CA (a PEM
// bundle; hack/examples-test gives this machine's), for machines whose
// HTTPS goes through an intercepting proxy: npm verifies the registry's
// certificate against the image's store. debian:bookworm is replaced, as a
// named context, by itself with the bundle where update-ca-certificates
// (run when the Dockerfile installs ca-certificates) takes it in; the
// Dockerfiles stay as they are.
func hostCA(t *testing.T) []string {
	bundle := os.Getenv("C2VM_EXAMPLES_CA")
	if bundle == "" {
		return nil
	}
	pem, err := os.ReadFile(bundle)
	must(t, err)
	dir := writeContext(t, map[string]string{"host-ca.crt": string(pem),
		"Dockerfile": "FROM debian:bookworm\nCOPY host-ca.crt /usr/local/share/ca-certificates/c2vm-host-ca.crt\n"})
	ref := env(t, "C2VM_REGISTRY") + "/c2vm-examples/debian:bookworm"
	buildx(t, "--output", "type=image,name="+ref+",push=true,registry.insecure=true", dir)
	return []string{"--build-context", "debian:bookworm=docker-image://" + ref}
}

// screendump saves the guest's screen as a PNG through QMP (QEMU 7+).
func screendump(t *testing.T, sock, file string) {
	t.Helper()
	qmpCommand(t, sock, "screendump", map[string]string{"filename": file, "format": "png"})
}

// distinctColours decodes a PNG and counts its colours.
func distinctColours(t *testing.T, file string) (int, int, int) {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	must(t, err)
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen), b.Dx(), b.Dy()
}
