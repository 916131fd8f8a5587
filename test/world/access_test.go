//go:build world

package world

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshKey makes a key pair with ssh-keygen and returns the private key's
// path and the public key line.
func sshKey(t *testing.T, name string) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@c2vm-test", "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(p + ".pub")
	must(t, err)
	return p, strings.TrimSpace(string(pub))
}

// guest is a disk booted with c2vm run --ssh in the background.
type guest struct {
	t     *testing.T
	port  string
	user  string
	lines <-chan string
	stop  func() string
}

// bootSSH boots a disk with --ssh (and any other flags) and returns once
// c2vm run printed the ssh command line; stop has it press the power
// button and returns the console.
func bootSSH(t *testing.T, disk string, flags ...string) *guest {
	t.Helper()
	// The ssh line comes once sshd answers: first-boot key generation and
	// cloud-init take minutes under emulation.
	args := append([]string{"run", "--snapshot", "--ssh", "--ready-timeout", "15m", "--memory", "2G", "--timeout", "40m"}, flags...)
	cmd := exec.Command(c2vm, append(args, disk)...)
	lines, wait := console(t, cmd)
	m := regexp.MustCompile(`log in with: ssh -p (\d+) ([a-z0-9_-]+)@127\.0\.0\.1`).FindStringSubmatch(waitFor(t, lines, "log in with:", 15*time.Minute))
	if m == nil {
		t.Fatal("no ssh command line")
	}
	g := &guest{t: t, port: m[1], user: m[2], lines: lines}
	g.stop = func() string {
		// c2vm run presses the guest's power button on SIGTERM.
		cmd.Process.Signal(syscall.SIGTERM)
		out, err := wait()
		if err != nil {
			t.Errorf("c2vm run: %v\n%s", err, tail(out, 3000))
		}
		return out
	}
	return g
}

// ssh runs a command in the guest; extra options come before the host.
func (g *guest) ssh(key, user, command string, opts ...string) (string, error) {
	args := []string{"-p", g.port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"}
	if key != "" {
		args = append(args, "-i", key, "-o", "IdentitiesOnly=yes")
	}
	args = append(append(args, opts...), user+"@127.0.0.1", command)
	out, err := exec.Command("ssh", args...).CombinedOutput()
	return string(out), err
}

// waitSSH retries until the guest lets key in (first boot makes host keys,
// cloud-init may still be at work) and returns the command's output.
func (g *guest) waitSSH(key, user, command string, d time.Duration) string {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, err := g.ssh(key, user, command)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("ssh %s@ did not get in within %s: %v\n%s\nconsole:\n%s", user, d, err, out, tail(g.stop(), 3000))
		}
		time.Sleep(5 * time.Second)
	}
}

// checkAccess runs the checks every disk with C2VM_USER=dev,
// C2VM_SUDO_NOPASSWD=1 and keys must pass, in one boot.
func checkAccess(t *testing.T, g *guest, key string) {
	t.Helper()
	if g.user != "dev" {
		t.Errorf("c2vm run says to log in as %q, want dev (c2vm.json)", g.user)
	}
	out := g.waitSSH(key, "dev", "id", 15*time.Minute)
	t.Logf("ssh -p %s dev@127.0.0.1 id: %s", g.port, strings.TrimSpace(out))
	if !regexp.MustCompile(`uid=\d+\(dev\) gid=\d+\(dev\) groups=\d+\(dev\),27\(sudo\)`).MatchString(out) {
		t.Errorf("id: %s", out)
	}
	if out, err := g.ssh(key, "dev", "sudo -n true && echo SUDO-OK && ls -ld ~ ~/.ssh ~/.ssh/authorized_keys && ls -a ~"); err != nil || !strings.Contains(out, "SUDO-OK") {
		t.Errorf("sudo -n: %v\n%s", err, out)
	} else if !strings.Contains(out, "drwxr-x--- ") || !strings.Contains(out, "-rw------- 1 dev dev") || !strings.Contains(out, ".bashrc") {
		t.Errorf("home, .ssh or skeleton:\n%s", out)
	}
	out, _ = g.ssh(key, "dev", "systemctl is-system-running --wait; systemctl --failed --no-legend")
	if strings.TrimSpace(out) != "running" {
		t.Errorf("system state and failed units:\n%s", out)
	}
	out, _ = g.ssh(key, "dev", "sudo -n sshd -T | grep -E '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) '")
	for _, want := range []string{"permitrootlogin without-password", "passwordauthentication no", "kbdinteractiveauthentication no"} {
		if !strings.Contains(out, want) {
			t.Errorf("sshd -T lacks %q:\n%s", want, out)
		}
	}
	// root by password: the server offers no password method at all.
	out, err := g.ssh("", "root", "true", "-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no")
	if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("root by password: %v\n%s", err, out)
	}
}

// A Debian and an Ubuntu image with keys, a user and password-less sudo:
// the test logs in through c2vm run --ssh. Debian is built twice, the
// second time with another key from a named build context: its disk has
// the new key only, and the old one is refused. Ubuntu also gets keys from
// a secret.
func TestAccessSSH(t *testing.T) {
	parallelBoot(t)
	keyA, pubA := sshKey(t, "a")
	keyB, pubB := sshKey(t, "b")
	t.Run("debian", func(t *testing.T) {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM debian:bookworm\nRUN echo c2vm-access >/etc/c2vm-access-test\n"})
		args := []string{"--build-arg", "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_USER=dev", "--build-arg", "C2VM_SUDO_NOPASSWD=1"}
		first := t.TempDir()
		buildx(t, append(args, "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS="+pubA, "-o", first, dir)...)
		if keys := catDisk(t, filepath.Join(first, "linux.img"), "/home/dev/.ssh/authorized_keys"); !strings.Contains(keys, pubA) {
			t.Fatalf("first build's keys:\n%s", keys)
		}
		keysDir := writeContext(t, map[string]string{"id_b.pub": pubB + "\n"})
		second := t.TempDir()
		buildx(t, append(args, "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS=context:keys/id_b.pub", "--build-context", "keys="+keysDir, "-o", second, dir)...)
		disk := filepath.Join(second, "linux.img")
		if keys := catDisk(t, disk, "/home/dev/.ssh/authorized_keys"); !strings.Contains(keys, pubB) || strings.Contains(keys, pubA) {
			t.Errorf("rebuilt disk's keys:\n%s", keys)
		}
		g := bootSSH(t, disk)
		checkAccess(t, g, keyB)
		if out, err := g.ssh(keyA, "dev", "true"); err == nil {
			t.Errorf("the first build's key still logs in: %s", out)
		}
		g.stop()
		namedVMSSH(t, disk, keyB)
	})
	t.Run("ubuntu", func(t *testing.T) {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM ubuntu:24.04\n"})
		secret := filepath.Join(t.TempDir(), "team_keys")
		must(t, os.WriteFile(secret, []byte(pubB+"\n"), 0o600))
		out := t.TempDir()
		buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_USER=dev", "--build-arg", "C2VM_SUDO_NOPASSWD=1",
			"--build-arg", "C2VM_SSH_AUTHORIZED_KEYS="+pubA, "--build-arg", "C2VM_SSH_AUTHORIZED_KEYS_SECRET=teamkeys", "--secret", "id=teamkeys,src="+secret,
			"-o", out, dir)
		g := bootSSH(t, filepath.Join(out, "linux.img"))
		checkAccess(t, g, keyA)
		if out, err := g.ssh(keyB, "dev", "echo KEY-B-OK"); err != nil || !strings.Contains(out, "KEY-B-OK") {
			t.Errorf("the key from the secret: %v %s", err, out)
		}
		g.stop()
	})
}

// buildxFails runs docker buildx build and returns its output, failing
// the test when the build succeeds.
func buildxFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"buildx", "build", "--progress=plain"}, args...)...).CombinedOutput()
	if err == nil {
		t.Fatalf("docker buildx build %v succeeded", args)
	}
	return string(out)
}

// A forgotten --secret is reported as such by the build, with the option
// and the --secret to add (not as a failing kernel install); a user in app
// mode is refused.
func TestAccessErrors(t *testing.T) {
	_, pub := sshKey(t, "a")
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM debian:bookworm\nRUN echo c2vm-access >/etc/c2vm-access-test\n"})
	syntax := "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE")
	out := buildxFails(t, "--build-arg", syntax, "--build-arg", "C2VM_USER=dev", "--build-arg", "C2VM_SUDO_NOPASSWD=1",
		"--build-arg", "C2VM_SSH_AUTHORIZED_KEYS="+pub, "--build-arg", "C2VM_USER_PASSWORD_SECRET=devpw", "-o", t.TempDir(), dir)
	for _, want := range []string{`the secret "devpw" named by C2VM_USER_PASSWORD_SECRET was not given to the build`, "fix: add --secret id=devpw,src=FILE"} {
		if !strings.Contains(out, "ERROR: failed to build: failed to solve: "+want) && !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, tail(out, 3000))
		}
	}
	if strings.Contains(out, "package sources") || strings.Contains(out, "install kernel") && strings.Contains(out, "failed in step") {
		t.Errorf("the missing secret reads as a failing install:\n%s", tail(out, 3000))
	}
	out = buildxFails(t, "--build-arg", syntax, "--build-arg", "C2VM_MODE=app", "--build-arg", "C2VM_USER=dev", "-o", t.TempDir(), dir)
	if !strings.Contains(out, "C2VM_USER applies to system mode") {
		t.Errorf("C2VM_USER in app mode:\n%s", tail(out, 3000))
	}
}

const cloudUserData = `#cloud-config
hostname: ci-host
users:
  - name: ciuser
    shell: /bin/bash
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - %s
`

// C2VM_CLOUD_INIT=1: a NoCloud seed from c2vm run --cloud-init makes a user
// with a key and sets the hostname.
func TestAccessCloudInit(t *testing.T) {
	parallelBoot(t)
	key, pub := sshKey(t, "ci")
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM debian:bookworm\n"})
	out := buildDisk(t, dir, "C2VM_CLOUD_INIT=1")
	meta, _ := os.ReadFile(filepath.Join(out, "c2vm.json"))
	if !strings.Contains(string(meta), `"cloudInit": true`) {
		t.Errorf("c2vm.json: %s", meta)
	}
	ud := filepath.Join(t.TempDir(), "user-data.yaml")
	must(t, os.WriteFile(ud, []byte(strings.Replace(cloudUserData, "%s", pub, 1)), 0o644))
	g := bootSSH(t, filepath.Join(out, "linux.img"), "--cloud-init", ud)
	if g.user != "ciuser" {
		t.Errorf("c2vm run says to log in as %q, want ciuser (from the user-data)", g.user)
	}
	g.waitSSH(key, "ciuser", "true", 20*time.Minute)
	got, _ := g.ssh(key, "ciuser", "hostname; sudo -n true && echo SUDO-OK; cloud-init status --wait; systemctl --failed --no-legend")
	for _, want := range []string{"ci-host\nSUDO-OK\n", "status: done\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("guest says:\n%s\nwant %q", got, want)
		}
	}
	if !strings.HasSuffix(got, "status: done\n") {
		t.Errorf("failed units:\n%s", got)
	}
	g.stop()
}

// App mode: the keys go to root of an image whose program is sshd, which
// keeps its own settings and host keys.
func TestAccessAppMode(t *testing.T) {
	parallelBoot(t)
	key, pub := sshKey(t, "app")
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server && rm -rf /var/lib/apt/lists/*
EXPOSE 22
CMD ["/bin/sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]
`})
	out := buildDisk(t, dir, "C2VM_MODE=app", "C2VM_SSH_AUTHORIZED_KEYS="+pub)
	g := bootSSH(t, filepath.Join(out, "linux.img"))
	if g.user != "root" {
		t.Errorf("c2vm run says to log in as %q", g.user)
	}
	if got := g.waitSSH(key, "root", "stat -c '%a %U' /root/.ssh /root/.ssh/authorized_keys", 10*time.Minute); got != "700 root\n600 root\n" {
		t.Errorf("guest says %q", got)
	}
	// No stop: sshd ends with its own code on the power button, which c2vm
	// run passes on; the test's cleanup ends the VM.
}

// namedVMSSH starts a disk as a named VM in the background and logs in
// with c2vm ssh, which waits for sshd, then stops and removes the VM.
func namedVMSSH(t *testing.T, disk, key string) {
	t.Helper()
	state := t.TempDir()
	vm := func(args ...string) (string, error) {
		cmd := exec.Command(c2vm, args...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := vm("run", "--name", "w", "--detach", "--snapshot", "--memory", "2G", disk); err != nil {
		t.Fatalf("c2vm run --detach: %v\n%s", err, out)
	}
	defer vm("rm", "-f", "w")
	if out, err := vm("ssh", "--timeout", "15m", "-i", key, "w", "id"); err != nil || !strings.Contains(out, "(dev)") {
		logs, _ := vm("logs", "w")
		t.Fatalf("c2vm ssh w id: %v\n%s\nconsole:\n%s", err, out, tail(logs, 3000))
	}
	if out, err := vm("stop", "w"); err != nil || !strings.Contains(out, "powered off") {
		t.Errorf("c2vm stop w: %v\n%s", err, out)
	}
	if out, err := vm("rm", "w"); err != nil {
		t.Errorf("c2vm rm w: %v\n%s", err, out)
	}
	if out, _ := vm("ls"); strings.Contains(out, "w ") {
		t.Errorf("c2vm ls after rm:\n%s", out)
	}
}
