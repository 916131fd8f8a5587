package exporter

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/c2vm/c2vm/internal/ocitest"
	"golang.org/x/sys/unix"
)

// needTools skips when the Debian tools are missing, unless the run says
// they must be there (make test sets C2VM_REQUIRE_TOOLS=1).
func needTools(t *testing.T) {
	t.Helper()
	if err := checkTools(context.Background(), Options{Firmware: Hybrid}); err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if _, err := exec.LookPath("debugfs"); err != nil {
		if _, err := os.Stat("/usr/sbin/debugfs"); err != nil {
			t.Skip("debugfs not installed")
		}
	}
}

// kernelLayer is the smallest tree assembly accepts: a kernel and initramfs.
func kernelLayer() *ocitest.Tar {
	return ocitest.NewTar().Dir("boot", 0o755).
		File("boot/vmlinuz-6.1.0-1-amd64", "kernel", 0o644).
		File("boot/initrd.img-6.1.0-1-amd64", "initrd", 0o644)
}

// disk is an assembled image and where its root filesystem starts.
type disk struct {
	path string
	res  *Result
}

func assembleT(t *testing.T, src Source, opts Options) disk {
	t.Helper()
	needTools(t)
	if opts.OutDir == "" {
		opts.OutDir = t.TempDir()
	}
	res, err := Assemble(context.Background(), src, opts)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	return disk{path: res.Files[0], res: res}
}

// debugfs runs one debugfs request against the disk's root filesystem.
func (d disk) debugfs(t *testing.T, req string) string {
	t.Helper()
	out, err := exec.Command("/usr/sbin/debugfs", "-R", req, d.fsPath()).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %s: %v\n%s", req, err, out)
	}
	s := string(out)
	if i := strings.Index(s, "\n"); strings.HasPrefix(s, "debugfs ") && i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (d disk) fsPath() string {
	return d.path + "?offset=" + strconv.FormatInt(d.res.Layout.Root.Start, 10)
}

func (d disk) cat(t *testing.T, p string) string { return d.debugfs(t, "cat "+p) }

// exists reports whether a path resolves in the root filesystem.
func (d disk) exists(t *testing.T, p string) bool {
	out, _ := exec.Command("/usr/sbin/debugfs", "-R", "stat "+p, d.fsPath()).CombinedOutput()
	return !strings.Contains(string(out), "File not found")
}

func writeLayout(t *testing.T, layers ...[]byte) Source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.WriteLayout(dir, "test", layers...); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource("oci-layout:" + dir + ":test")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFlattenLayers(t *testing.T) {
	l0 := kernelLayer().
		Dir("etc", 0o755).File("etc/a", "a0", 0o644).
		Dir("del", 0o755).File("del/keep", "k", 0o644).File("del/gone", "g", 0o644).
		Dir("opq", 0o755).File("opq/x", "x", 0o644).Dir("opq/sub", 0o755).File("opq/sub/y", "y", 0o644).
		Dir("re", 0o755).File("re/old", "old", 0o644).
		Dir("data", 0o755).File("data/target", "T0", 0o644).Link("data/link", "data/target").
		Dir("usr", 0o755).Dir("usr/bin", 0o755).
		Entry(tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "su").
		Entry(tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}}, "ping").
		Dir("home", 0o755).Entry(tar.Header{Name: "home/user/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000}, "").
		Entry(tar.Header{Name: "home/user/file", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}, "mine").
		Dir("dev", 0o755).Entry(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "").
		Symlink("etc/link", "/etc/a")
	l1 := ocitest.NewTar().
		File("etc/a", "a1", 0o644).
		File("del/.wh.gone", "", 0o644).
		File("opq/.wh..wh..opq", "", 0o644).File("opq/new", "n", 0o644).
		File(".wh.re", "", 0o644).Dir("re", 0o755).File("re/fresh", "f", 0o644).
		File("data/target", "T1", 0o644).Link("data/link2", "data/target")
	d := assembleT(t, writeLayout(t, l0.Bytes(), l1.Bytes()), Options{})

	checks := map[string]string{"/etc/a": "a1", "/del/keep": "k", "/opq/new": "n", "/re/fresh": "f",
		"/data/target": "T1", "/data/link2": "T1", "/data/link": "T0", "/home/user/file": "mine"}
	for p, want := range checks {
		if got := d.cat(t, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"/del/gone", "/opq/x", "/opq/sub", "/re/old"} {
		if d.exists(t, p) {
			t.Errorf("%s survived its whiteout", p)
		}
	}
	// data/link2 and data/target share an inode; data/link has its own.
	if a, b := d.debugfs(t, "stat /data/target"), d.debugfs(t, "stat /data/link2"); inode(a) != inode(b) || !strings.Contains(a, "Links: 2") {
		t.Errorf("hardlink lost:\n%s\n%s", a, b)
	}
	if st := d.debugfs(t, "stat /usr/bin/su"); !strings.Contains(st, "Mode:  04755") || !strings.Contains(st, "User:     0") {
		t.Errorf("setuid lost: %s", st)
	}
	if st := d.debugfs(t, "stat /home/user/file"); !strings.Contains(st, "User:  1000   Group:  1000") || !strings.Contains(st, "Mode:  0600") {
		t.Errorf("owner lost: %s", st)
	}
	if ea := d.debugfs(t, "ea_list /usr/bin/ping"); !strings.Contains(ea, "security.capability") {
		t.Errorf("capability lost: %s", ea)
	}
	if st := d.debugfs(t, "stat /dev/null"); !strings.Contains(st, "Type: character special") || !strings.Contains(st, "Device major/minor number: 01:03") {
		t.Errorf("device node lost: %s", st)
	}
	if st := d.debugfs(t, "stat /etc/link"); !strings.Contains(st, "Type: symlink") || !strings.Contains(st, `Fast link dest: "/etc/a"`) {
		t.Errorf("symlink lost: %s", st)
	}
}

// inode pulls "Inode: N" out of debugfs stat output.
func inode(stat string) string {
	f := strings.Fields(stat)
	if len(f) > 1 && f[0] == "Inode:" {
		return f[1]
	}
	return ""
}

func TestTarSourceOrderAndParents(t *testing.T) {
	// No directory entries at all, and a hardlink: mke2fs needs parents
	// first, which the flattener synthesises.
	tr := ocitest.NewTar().
		File("boot/vmlinuz-1", "k", 0o644).File("boot/initrd.img-1", "i", 0o644).
		File("a/b/c/file", "deep", 0o640).Link("a/hard", "a/b/c/file").
		File("a/Größe-€", "utf8", 0o644).Symlink("a/link-€", "Größe-€")
	p := filepath.Join(t.TempDir(), "root.tar")
	os.WriteFile(p, tr.Bytes(), 0o644)
	src, err := OpenSource(p)
	if err != nil {
		t.Fatal(err)
	}
	// Build containers run with the C locale; UTF-8 names must still work.
	t.Setenv("LC_ALL", "C")
	t.Setenv("LANG", "C")
	d := assembleT(t, src, Options{Firmware: UEFI})
	if got := d.cat(t, "/a/Größe-€"); got != "utf8" {
		t.Errorf("UTF-8 name: %q", got)
	}
	if st := d.debugfs(t, "stat /a/link-€"); !strings.Contains(st, `Fast link dest: "Größe-€"`) {
		t.Errorf("UTF-8 link: %s", st)
	}
	if got := d.cat(t, "/a/hard"); got != "deep" {
		t.Errorf("hardlink content %q", got)
	}
	if st := d.debugfs(t, "stat /a/b"); !strings.Contains(st, "Type: directory") {
		t.Errorf("parent not made: %s", st)
	}
}

func TestDirSourceHardlinksAndXattrs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-2"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-2"), []byte("i"), 0o644)
	os.WriteFile(filepath.Join(root, "f"), []byte("shared"), 0o4755)
	syscall.Chmod(filepath.Join(root, "f"), 0o4755) // os.Chmod takes Go mode bits
	os.Link(filepath.Join(root, "f"), filepath.Join(root, "g"))
	os.Symlink("/nonexistent/outside", filepath.Join(root, "s"))
	if err := unix.Setxattr(filepath.Join(root, "f"), "user.c2vm", []byte("kept"), 0); err != nil {
		t.Skipf("no xattrs on this filesystem: %v", err)
	}
	src, _ := OpenSource(root)
	d := assembleT(t, src, Options{Firmware: BIOS})
	if a, b := d.debugfs(t, "stat /f"), d.debugfs(t, "stat /g"); inode(a) != inode(b) || !strings.Contains(a, "Mode:  04755") {
		t.Errorf("hardlink or mode lost:\n%s\n%s", a, b)
	}
	if ea := d.debugfs(t, "ea_get /f user.c2vm"); !strings.Contains(ea, "kept") {
		t.Errorf("xattr lost: %s", ea)
	}
	if st := d.debugfs(t, "stat /s"); !strings.Contains(st, "/nonexistent/outside") {
		t.Errorf("symlink target changed: %s", st)
	}
	if got := d.cat(t, "/g"); got != "shared" {
		t.Errorf("content %q", got)
	}
}

func TestUnsafePathRefused(t *testing.T) {
	tr := kernelLayer().File("../escape", "x", 0o644)
	src := writeLayout(t, tr.Bytes())
	needTools(t)
	_, err := Assemble(context.Background(), src, Options{OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "climbs out of the root") {
		t.Fatalf("got %v", err)
	}
}

func TestCorruptLayerRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.WriteLayout(dir, "t", kernelLayer().File("big", strings.Repeat("data ", 1000), 0o644).Bytes()); err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the largest blob: the layer.
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(dir, "blobs"), func(p string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	b, _ := os.ReadFile(biggest)
	b[len(b)/2] ^= 0xff
	os.WriteFile(biggest, b, 0o644)
	src, err := OpenSource("oci-layout:" + dir)
	if err == nil {
		needTools(t)
		_, err = Assemble(context.Background(), src, Options{OutDir: t.TempDir()})
	}
	if err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Fatalf("corrupt layer accepted: %v", err)
	}
}

func TestDockerArchiveSource(t *testing.T) {
	p := filepath.Join(t.TempDir(), "saved.tar")
	l0 := kernelLayer().Dir("etc", 0o755).File("etc/a", "a0", 0o644).File("etc/b", "b", 0o644)
	l1 := ocitest.NewTar().File("etc/a", "a1", 0o644).File("etc/.wh.b", "", 0o644)
	if err := ocitest.WriteDockerArchive(p, "example.test/app:v1", l0.Bytes(), l1.Bytes()); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"docker-archive:" + p, "docker-archive:" + p + ":example.test/app:v1"} {
		src, err := OpenSource(spec)
		if err != nil {
			t.Fatal(err)
		}
		d := assembleT(t, src, Options{Firmware: BIOS})
		if got := d.cat(t, "/etc/a"); got != "a1" || d.exists(t, "/etc/b") {
			t.Errorf("%s: /etc/a = %q, /etc/b exists %v", spec, got, d.exists(t, "/etc/b"))
		}
	}
	if _, err := OpenSource("docker-archive:" + p + ":example.test/other:v2"); err == nil || !strings.Contains(err.Error(), "cannot read docker-archive") {
		t.Errorf("missing tag: %v", err)
	}
}
