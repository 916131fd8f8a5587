//go:build setup

// Package setup tests the machine set-up in hack/ the way a new machine
// meets it: every Debian package hack/deps names must still be in the
// configured archive, a package the archive lacks stops hack/deps before
// anything is installed, and the keys and tool pins it trusts are checked.
// They run as root with the network (make setup-test, first in make test).
package setup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repo is the checkout's root, from this package's directory.
func repo(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the set-up tests run hack/deps, which needs root: run make setup-test as root")
	}
}

// TestEveryPackageHasCandidate is the check that would have caught the
// archive dropping ubuntu-keyring: installed or not, every package hack/deps
// names (bench's included) has a candidate in the configured archive.
func TestEveryPackageHasCandidate(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(filepath.Join(repo(t), "hack/deps"), "check", "bench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/deps check bench: %v\n%s", err, out)
	}
}

// TestArm64Pieces runs hack/deps (installing what is missing, as make test
// does next) twice and checks what the arm64 world and arm64 disks need on
// the host: the aarch64 binfmt_misc handler registered with the F flag that
// BuildKit's runc worker needs, and GRUB's arm64-efi modules of the
// installed grub-common's version in /usr/lib/c2vm/grub/arm64-efi. The
// second run must find everything in place and change nothing.
func TestArm64Pieces(t *testing.T) {
	needRoot(t)
	deps := filepath.Join(repo(t), "hack/deps")
	if out, err := exec.Command(deps).CombinedOutput(); err != nil {
		t.Fatalf("hack/deps: %v\n%s", err, out)
	}
	h, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if err != nil {
		t.Fatalf("no aarch64 binfmt_misc handler after hack/deps: %v", err)
	}
	if !regexp.MustCompile(`(?m)^enabled$`).Match(h) || !regexp.MustCompile(`(?m)^flags:.*F`).Match(h) {
		t.Errorf("the aarch64 handler is not enabled with the F flag:\n%s", h)
	}
	grub, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "grub-common").Output()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := os.ReadFile("/usr/lib/c2vm/grub/arm64-efi/.c2vm-version")
	if strings.TrimSpace(string(v)) != string(grub) {
		t.Errorf("/usr/lib/c2vm/grub/arm64-efi is of version %q, grub-common of %q", v, grub)
	}
	for _, f := range []string{"normal.mod", "moddep.lst", "kernel.img"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/c2vm/grub/arm64-efi", f)); err != nil {
			t.Errorf("GRUB's arm64-efi modules: %v", err)
		}
	}
	before, _ := os.Stat("/usr/lib/c2vm/grub/arm64-efi")
	if out, err := exec.Command(deps).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("a second hack/deps did something: %v\n%s", err, out)
	}
	if after, _ := os.Stat("/usr/lib/c2vm/grub/arm64-efi"); before == nil || after == nil || !os.SameFile(before, after) {
		t.Errorf("a second hack/deps replaced /usr/lib/c2vm/grub/arm64-efi")
	}
}

// TestMissingPackageStopsBeforeInstall adds a package no archive has: hack/deps
// must name it on one line, exit non-zero, and never call apt-get install.
func TestMissingPackageStopsBeforeInstall(t *testing.T) {
	needRoot(t)
	const ghost = "c2vm-no-such-package"
	shim := t.TempDir()
	calls := filepath.Join(shim, "calls")
	realApt, err := exec.LookPath("apt-get")
	if err != nil {
		t.Fatal(err)
	}
	// The shim logs every apt-get call and passes only update through.
	script := "#!/bin/sh\necho \"$*\" >>" + calls + "\ncase \"$1\" in update) exec " + realApt + " \"$@\";; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(shim, "apt-get"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repo(t), "hack/deps"), ghost)
	cmd.Env = append(os.Environ(), "PATH="+shim+":"+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil {
		t.Fatalf("hack/deps %s succeeded; want a failure naming the package\n%s%s", ghost, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], ghost) || !strings.Contains(lines[0], "fix:") {
		t.Errorf("stderr is not one line naming %s with a fix:\n%s", ghost, &stderr)
	}
	log, _ := os.ReadFile(calls)
	for _, l := range strings.Split(string(log), "\n") {
		if strings.HasPrefix(l, "install") {
			t.Errorf("hack/deps called apt-get %s before refusing", l)
		}
	}
	if !strings.Contains(string(log), "update") {
		t.Errorf("hack/deps did not run apt-get update before judging candidates (calls: %q)", log)
	}
}

// TestUbuntuKeyringChecked runs the keyring check on the repository's files
// and on copies with one fingerprint changed or one key byte flipped.
func TestUbuntuKeyringChecked(t *testing.T) {
	check := func(hack string) ([]byte, error) {
		script := filepath.Join(hack, "keycheck")
		body := ". " + filepath.Join(hack, "lib.sh") + "\nubuntu_keyring\n"
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(script)
		return exec.Command("sh", script).CombinedOutput()
	}
	orig := filepath.Join(repo(t), "hack")
	out, err := check(orig)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "hack/keys/ubuntu-archive-keyring.gpg") {
		t.Fatalf("the repository's keyring was refused: %v\n%s", err, out)
	}
	copyHack := func() string {
		d := t.TempDir()
		for _, f := range []string{"lib.sh", "keys/ubuntu-archive-keyring.gpg", "keys/ubuntu-archive-keyring.fingerprints"} {
			b, err := os.ReadFile(filepath.Join(orig, f))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(d, f)), 0o755)
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	fp := copyHack()
	f := filepath.Join(fp, "keys/ubuntu-archive-keyring.fingerprints")
	b, _ := os.ReadFile(f)
	os.WriteFile(f, bytes.Replace(b, []byte("F6ECB376"), []byte("F6ECB377"), 1), 0o644)
	if out, err := check(fp); err == nil {
		t.Errorf("a changed fingerprint list was accepted:\n%s", out)
	}
	kr := copyHack()
	k := filepath.Join(kr, "keys/ubuntu-archive-keyring.gpg")
	b, _ = os.ReadFile(k)
	b[len(b)/2] ^= 0xff
	os.WriteFile(k, b, 0o644)
	if out, err := check(kr); err == nil {
		t.Errorf("a changed keyring was accepted:\n%s", out)
	}
}

// TestToolModulesPinned checks that every tool module's go.sum covers the
// whole build, so hack/tools never needs a hash it was not given.
func TestToolModulesPinned(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(repo(t), "hack/toolmods/*"))
	if len(dirs) < 4 {
		t.Fatalf("hack/toolmods holds %d modules; want buildkit, registry, crane and buildx", len(dirs))
	}
	for _, d := range dirs {
		src, err := os.ReadFile(filepath.Join(d, "tools.go"))
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"list", "-mod=readonly", "-deps"}
		for _, m := range regexp.MustCompile(`(?m)^\s*_ "([^"]+)"`).FindAllSubmatch(src, -1) {
			args = append(args, string(m[1]))
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = d
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: go list -mod=readonly: %v\n%s", filepath.Base(d), err, lastLines(out, 10))
		}
	}
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
