package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/testbin"
)

var c2vm string // the binary under test

func TestMain(m *testing.M) {
	var cleanup func()
	c2vm, cleanup = testbin.Build("", ".")
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// runC2VM runs the binary; it returns its exit error and stderr.
func runC2VM(t *testing.T, env []string, args ...string) (error, string) {
	t.Helper()
	cmd := exec.Command(c2vm, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return err, stderr.String()
}

// smallTree writes a rootfs tar with a (fake) kernel, enough to assemble.
func smallTree(t *testing.T, withKernel bool) string {
	tr := ocitest.NewTar().Dir("etc", 0o755).File("etc/hostname", "x\n", 0o644)
	if withKernel {
		tr.Dir("boot", 0o755).File("boot/vmlinuz-6.1.0-1-amd64", "k", 0o644).File("boot/initrd.img-6.1.0-1-amd64", "i", 0o644).
			File("sbin/init", "#!/bin/sh\n", 0o755)
	}
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, tr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// bigTree is a rootfs tar with 40 MB of data: more than a 64M disk holds.
func bigTree(t *testing.T) string {
	tr := ocitest.NewTar().Dir("boot", 0o755).File("boot/vmlinuz-6.1.0-1-amd64", "k", 0o644).File("boot/initrd.img-6.1.0-1-amd64", "i", 0o644).
		File("sbin/init", "#!/bin/sh\n", 0o755).File("big", strings.Repeat("x", 40<<20), 0o644)
	p := filepath.Join(t.TempDir(), "big.tar")
	if err := os.WriteFile(p, tr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertNoOutput checks a failed run left nothing behind in the output dir.
func assertNoOutput(t *testing.T, out string) {
	t.Helper()
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		t.Errorf("failed run left %s in the output directory", e.Name())
	}
}

func TestBadInput(t *testing.T) {
	good := smallTree(t, true)
	corrupt := filepath.Join(t.TempDir(), "corrupt.tar")
	b, _ := os.ReadFile(good)
	os.WriteFile(corrupt, append(b[:700:700], bytes.Repeat([]byte{0xff}, 600)...), 0o644)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	notKey, notHash := filepath.Join(t.TempDir(), "keys"), filepath.Join(t.TempDir(), "pw")
	os.WriteFile(notKey, []byte("# my key\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ok\ncommand=\"rm -rf /\" ssh-rsa AAAA\n"), 0o644)
	os.WriteFile(notHash, []byte("hunter2\n"), 0o600)

	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"missing source", nil, []string{"/nonexistent/rootfs"}, []string{"source /nonexistent/rootfs does not exist", "fix:"}},
		{"no kernel", nil, []string{smallTree(t, false)}, []string{"has no kernel, initramfs and init", "install a kernel", "--cmd"}},
		{"system mode without kernel", nil, []string{"--mode", "system", smallTree(t, false)}, []string{"has no kernel and initramfs", "--mode app"}},
		{"unknown mode", nil, []string{"--mode", "vm", good}, []string{`unknown mode "vm"`, "auto, system or app"}},
		{"bad entrypoint", nil, []string{"--mode", "app", "--entrypoint", `["/app",`, good}, []string{"not a JSON array", `["/app","--flag"]`}},
		{"bad env", nil, []string{"--mode", "app", "--cmd", "/app", "--env", "=x", good}, []string{"is not NAME=value"}},
		{"no kernel for app mode", nil, []string{"--mode", "app", "--cmd", "/app", "--kernel-dir", "/nonexistent", smallTree(t, false)}, []string{"kernel", "linux-image-amd64", "--kernel-dir"}},
		{"size too small", nil, []string{"--size", "64M", bigTree(t)}, []string{"disk size 64M is too small", "at least", "--size auto"}},
		{"unknown format", nil, []string{"--format", "qcow2,iso", good}, []string{`unknown format "iso"`, "raw, qcow2, vmdk, vhdx, vdi, vhd"}},
		{"unknown firmware", nil, []string{"--firmware", "coreboot", good}, []string{`unknown firmware "coreboot"`, "hybrid, bios, uefi"}},
		{"bad size", nil, []string{"--size", "huge", good}, []string{`bad size "huge"`}},
		{"size nan", nil, []string{"--size", "nan", good}, []string{`bad size "nan": not a number`}},
		{"size inf", nil, []string{"--size", "inf", good}, []string{`bad size "inf": not a number`}},
		{"size fraction", nil, []string{"--size", "0.1", good}, []string{`bad size "0.1": not a whole number`}},
		{"size negative", nil, []string{"--size", "-2G", good}, []string{`bad size "-2G"`}},
		{"cmdline newline", nil, []string{"--cmdline", "quiet\nmenuentry", good}, []string{"control character", "one line"}},
		{"output not a directory", nil, []string{"-o", notDir + "/out", good}, []string{"cannot make the output directory", "fix:"}},
		{"corrupt tar", nil, []string{corrupt}, []string{"cannot read tar file", "damaged"}},
		{"missing GRUB", []string{"C2VM_GRUB_LIB=/nonexistent"}, []string{good}, []string{"GRUB for i386-pc is not installed", "grub-pc-bin"}},
		{"keys file with a non-key line", nil, []string{"--ssh-authorized-keys", notKey, good}, []string{"--ssh-authorized-keys " + notKey + ": line 3 is not an OpenSSH public key", "fix: give OpenSSH public keys"}},
		{"keys file missing", nil, []string{"--ssh-authorized-keys", "/nonexistent/keys", good}, []string{"--ssh-authorized-keys: open /nonexistent/keys", "fix:"}},
		{"password file not a hash", nil, []string{"--root-password-file", notHash, good}, []string{"--root-password-file " + notHash + ": not a crypt(3) hash", "mkpasswd"}},
		{"keys without sshd", nil, []string{"--ssh-authorized-keys", validKeys(t), good}, []string{"no OpenSSH server", "install openssh-server"}},
		{"password without shadow", nil, []string{"--root-password-file", validHash(t), good}, []string{"has no /etc/shadow", "--root-password-file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			err, stderr := runC2VM(t, c.env, append([]string{"assemble", "-o", out}, c.args...)...)
			if err == nil {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if n := strings.Count(stderr, "c2vm:"); n != 1 {
				t.Errorf("want one error, got %d:\n%s", n, stderr)
			}
			assertNoOutput(t, out)
		})
	}
}

func TestAssembleSmallTree(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	err, stderr := runC2VM(t, []string{"SOURCE_DATE_EPOCH=1"}, "assemble", "-o", out, "--format", "raw,qcow2", smallTree(t, true))
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") == "" && strings.Contains(stderr, "not installed") {
			t.Skip(stderr)
		}
		t.Fatalf("%v\n%s", err, stderr)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "c2vm.json linux.img linux.qcow2" {
		t.Errorf("output directory holds %v, want c2vm.json, linux.img and linux.qcow2 only", names)
	}
}

// TestAssembleTwoKernels checks that a tree with two kernels boots the
// newest by version order (9 < 10, not as strings) and says so.
func TestAssembleTwoKernels(t *testing.T) {
	tr := ocitest.NewTar().Dir("boot", 0o755).File("sbin/init", "#!/bin/sh\n", 0o755)
	for _, v := range []string{"6.1.0-10-amd64", "6.1.0-9-amd64"} {
		tr.File("boot/vmlinuz-"+v, "k", 0o644).File("boot/initrd.img-"+v, "i", 0o644)
	}
	src := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(src, tr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	err, stderr := runC2VM(t, nil, "assemble", "-o", filepath.Join(t.TempDir(), "out"), src)
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") == "" && strings.Contains(stderr, "not installed") {
			t.Skip(stderr)
		}
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "booting the newest kernel in /boot at each boot (now kernel 6.1.0-10-amd64)") {
		t.Errorf("the log does not name the newest kernel:\n%s", stderr)
	}
}

func validKeys(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(p, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host\n"), 0o644)
	return p
}

func validHash(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(p, []byte("$6$salt$"+strings.Repeat("h", 86)+"\n"), 0o600)
	return p
}

// Root's keys and password reach the disk, and c2vm.json says whom to ssh
// as.
func TestAssembleAccess(t *testing.T) {
	tr := ocitest.NewTar().Dir("boot", 0o755).File("boot/vmlinuz-6.1.0-1-amd64", "k", 0o644).File("boot/initrd.img-6.1.0-1-amd64", "i", 0o644).
		File("sbin/init", "#!/bin/sh\n", 0o755).File("usr/sbin/sshd", "ELF", 0o755).Dir("etc/ssh/sshd_config.d", 0o755).
		File("etc/shadow", "root:!:19000:0:99999:7:::\n", 0o640).Dir("root", 0o700)
	src := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(src, tr.Bytes(), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	err, stderr := runC2VM(t, nil, "assemble", "-o", out, "--ssh-authorized-keys", validKeys(t), "--root-password-file", validHash(t), src)
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") == "" && strings.Contains(stderr, "not installed") {
			t.Skip(stderr)
		}
		t.Fatalf("%v\n%s", err, stderr)
	}
	meta, _ := os.ReadFile(filepath.Join(out, "c2vm.json"))
	if !strings.Contains(string(meta), `"sshUser": "root"`) {
		t.Errorf("c2vm.json: %s", meta)
	}
	img := filepath.Join(out, "linux.img")
	js, err := exec.Command("sfdisk", "-J", img).Output()
	if err != nil {
		t.Skip("sfdisk: ", err)
	}
	i := strings.LastIndex(string(js), `"start":`)
	var start int64
	fmt.Sscanf(string(js)[i+len(`"start":`):], "%d", &start)
	fs := fmt.Sprintf("%s?offset=%d", img, start*512)
	for p, want := range map[string]string{"/root/.ssh/authorized_keys": "me@host", "/etc/shadow": "root:$6$salt$", "/etc/ssh/sshd_config.d/10-c2vm.conf": "PasswordAuthentication yes"} {
		got, err := exec.Command("debugfs", "-R", "cat "+p, fs).Output()
		if err != nil || !strings.Contains(string(got), want) {
			t.Errorf("%s: %q (%v), want %q", p, got, err, want)
		}
	}
	if st, _ := exec.Command("debugfs", "-R", "stat /root/.ssh/authorized_keys", fs).Output(); !strings.Contains(string(st), "Mode:  0600") || !strings.Contains(string(st), "User:     0") {
		t.Errorf("authorized_keys: %s", st)
	}
}
