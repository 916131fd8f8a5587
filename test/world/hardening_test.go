//go:build world

package world

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rootFS finds the root partition of a disk and returns debugfs's path for
// it.
func rootFS(t *testing.T, disk string) string {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	must(t, err)
	i := strings.LastIndex(string(out), `"start":`)
	var start int64
	fmt.Sscanf(string(out)[i+len(`"start":`):], "%d", &start)
	return fmt.Sprintf("%s?offset=%d", disk, start*512)
}

// catDisk reads a file from a disk's root filesystem with debugfs.
func catDisk(t *testing.T, disk, p string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+p, rootFS(t, disk)).Output()
	must(t, err)
	return string(out)
}

func existsOnDisk(t *testing.T, disk, p string) bool {
	out, _ := exec.Command("debugfs", "-R", "stat "+p, rootFS(t, disk)).CombinedOutput()
	return !strings.Contains(string(out), "File not found")
}

func rootShadow(t *testing.T, disk string) string {
	for _, l := range strings.Split(catDisk(t, disk, "/etc/shadow"), "\n") {
		if strings.HasPrefix(l, "root:") {
			return strings.Split(l, ":")[1]
		}
	}
	t.Fatalf("no root in /etc/shadow")
	return ""
}

// The root password comes from a secret, whose contents BuildKit's cache
// does not see: a changed secret must change the disk, never reuse the
// layer made with the old one.
func TestRootPasswordSecretNotCached(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM debian:bookworm\nRUN echo c2vm >/etc/c2vm-secret-test\n"), 0o644))
	for _, hash := range []string{"$6$saltA$" + strings.Repeat("A", 86), "$6$saltB$" + strings.Repeat("B", 86)} {
		secret := filepath.Join(t.TempDir(), "pw")
		must(t, os.WriteFile(secret, []byte(hash+"\n"), 0o600))
		out := t.TempDir()
		buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_ROOT_PASSWORD_SECRET=rootpw",
			"--secret", "id=rootpw,src="+secret, "-o", out, dir)
		if got := rootShadow(t, filepath.Join(out, "linux.img")); got != hash {
			t.Errorf("root's hash is %q, want %q (from cache?)", got, hash)
		}
	}
}

// An image that brings its own kernel and init gets the distribution-neutral
// guest configuration from c2vm's own code: baked SSH host keys removed,
// root locked, hostname set, machine-id emptied.
func TestOwnKernelImageIsConfigured(t *testing.T) {
	dir := t.TempDir()
	df := `FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends linux-image-amd64 systemd-sysv openssh-server \
 && rm -rf /var/lib/apt/lists/*
RUN echo 'root:$6$baked$bakedhash' | chpasswd -e && ls /etc/ssh/ssh_host_ed25519_key && echo baked-id >/etc/machine-id
`
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644))
	out := t.TempDir()
	buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_HOSTNAME=ownboot", "-o", out, dir)
	disk := filepath.Join(out, "linux.img")
	if got := rootShadow(t, disk); got != "!" {
		t.Errorf("root's password field %q: not locked", got)
	}
	if existsOnDisk(t, disk, "/etc/ssh/ssh_host_ed25519_key") {
		t.Error("baked SSH host key kept")
	}
	if got := catDisk(t, disk, "/etc/hostname"); got != "ownboot\n" {
		t.Errorf("hostname %q", got)
	}
	if got := catDisk(t, disk, "/etc/machine-id"); got != "" {
		t.Errorf("machine-id %q kept", got)
	}
}
