package main

import (
	"bytes"
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
	err, stderr := runC2VM(t, []string{"SOURCE_DATE_EPOCH=1"}, "assemble", "-o", out, "--format", "qcow2", smallTree(t, true))
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
