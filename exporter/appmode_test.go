package exporter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/appinit"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/usererr"
)

// inventoryOf scans an image of the given layers.
func inventoryOf(t *testing.T, layers ...*ocitest.Tar) *rootfs.Inventory {
	t.Helper()
	var bs [][]byte
	for _, l := range layers {
		bs = append(bs, l.Bytes())
	}
	inv, err := layoutSource(t, bs...).Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// An image's own /.c2vm, where app mode puts c2vm's kernel, initramfs and
// config, is refused by name with a fix, before any kernel is looked for:
// as a directory, as a file, as a symlink, or made as the parent of a file.
func TestAppModeRefusesImagesC2vm(t *testing.T) {
	for name, layer := range map[string]*ocitest.Tar{
		"directory": ocitest.NewTar().Dir(".c2vm", 0o755).File(".c2vm/config.json", "{}", 0o644),
		"file":      ocitest.NewTar().File(".c2vm", "x", 0o644),
		"symlink":   ocitest.NewTar().Dir("etc", 0o755).Symlink(".c2vm", "etc"),
		"parent":    ocitest.NewTar().File(".c2vm/vmlinuz", "k", 0o644),
	} {
		inv := inventoryOf(t, ocitest.NewTar().File("app", "#!/bin/sh\n", 0o755), layer)
		opts := &Options{Mode: disk.ModeApp, Program: &appinit.Config{Cmd: []string{"/app"}}, KernelDir: "/nonexistent"}
		_, err := prepareApp(opts, inv, t.TempDir())
		var ie *usererr.Error
		if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "/.c2vm") || !strings.Contains(ie.Fix, "remove /.c2vm") {
			t.Errorf("%s: want a clear error naming /.c2vm, got %v", name, err)
		}
	}
}

// However many kernels /boot holds, auto mode still sees the init and the
// one kernel that has an initramfs, whichever sort first.
func TestAutoModeWithManyKernels(t *testing.T) {
	for _, junk := range []string{"0.%d", "9.%d-noinitrd", "zz%d"} {
		layer := kernelLayer()
		for i := range 600 {
			layer.File("boot/vmlinuz-"+fmt.Sprintf(junk, i), "k", 0o644)
		}
		inv := inventoryOf(t, layer.Dir("etc/systemd/system", 0o755))
		if m := pickMode(disk.ModeAuto, inv); m != disk.ModeSystem {
			t.Errorf("junk %q: mode %s, want system", junk, m)
		}
		if bf, ok := inv.FindBoot(); !ok || bf.Kernel != "boot/vmlinuz-6.1.0-1-amd64" {
			t.Errorf("junk %q: boot files %+v", junk, bf)
		}
		if !inv.Has("etc/systemd/system") {
			t.Errorf("junk %q: etc/systemd/system lost", junk)
		}
	}
}

// Nothing is written through a symlinked /etc, /etc/systemd/system,
// /etc/repart.d or local-fs.target.wants, or under a file: the writer
// would refuse it. The growth unit needs a real directory to go in, and
// one to be enabled from.
func TestFirstBootSkipsSymlinkedDirs(t *testing.T) {
	base := ocitest.NewTar().File("usr/lib/systemd/systemd-growfs", "g", 0o755).Dir("usr/lib/systemd/system", 0o755).
		Dir("etc", 0o755).Dir("srv", 0o755)
	for _, c := range []struct {
		name    string
		top     *ocitest.Tar
		through string // nothing may be added under it
	}{
		{"systemd", ocitest.NewTar().Symlink("etc/systemd/system", "/usr/lib/systemd/system"), "etc/systemd/system/"},
		{"wants", ocitest.NewTar().Dir("etc/systemd/system", 0o755).Symlink("etc/systemd/system/local-fs.target.wants", "/srv"), "etc/systemd/system/"},
		{"repart.d", ocitest.NewTar().Symlink("etc/repart.d", "/srv"), "etc/repart.d/"},
		{"etc", ocitest.NewTar().Symlink("etc", "srv"), "etc/"},
		{"file", ocitest.NewTar().Dir("etc/systemd", 0o755).File("etc/systemd/system", "x", 0o644), "etc/systemd/system/"},
	} {
		for _, f := range firstBootFiles(inventoryOf(t, base, c.top)) {
			if strings.HasPrefix(f.name, c.through) {
				t.Errorf("%s: %s would be written under %s", c.name, f.name, c.through)
			}
		}
	}
}

// Through the whole assembly: a symlinked /etc/systemd/system gives a disk.
func TestAssembleSymlinkedSystemdDir(t *testing.T) {
	layer := kernelLayer().File("usr/lib/systemd/systemd-growfs", "g", 0o755).Dir("usr/lib/systemd/system", 0o755).
		Dir("etc/systemd", 0o755).Symlink("etc/systemd/system", "/usr/lib/systemd/system")
	var log strings.Builder
	d := assembleT(t, layoutSource(t, layer.Bytes()), Options{Firmware: disk.BIOS, Log: &log})
	d.fsck()
	if !strings.Contains(log.String(), "will not grow at boot") {
		t.Errorf("no note that the root will not grow:\n%s", log.String())
	}
	if d.Exists("usr/lib/systemd/system/c2vm-growfs.service") || !d.Exists("etc/repart.d/50-c2vm-root.conf") {
		t.Error("growth files written through the symlink, or the others missing")
	}
}
