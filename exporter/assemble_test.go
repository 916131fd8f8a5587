package exporter

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/hostile"
	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/usererr"
)

// needTools skips when the Debian tools are missing, unless the run says
// they must be there (make test sets C2VM_REQUIRE_TOOLS=1).
func needTools(t *testing.T) {
	t.Helper()
	err := checkTools(Options{Firmware: disk.Hybrid})
	if err == nil {
		_, err = lookTool("debugfs")
	}
	if err == nil {
		_, err = lookTool("e2fsck")
	}
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// kernelLayer is the smallest tree that assembles as a system: a kernel,
// an initramfs and an init.
func kernelLayer() *ocitest.Tar {
	return ocitest.NewTar().Dir("boot", 0o755).
		File("boot/vmlinuz-6.1.0-1-amd64", "kernel", 0o644).
		File("boot/initrd.img-6.1.0-1-amd64", "initrd", 0o644).
		File("sbin/init", "#!/bin/sh\n", 0o755)
}

// assembled is an assembled image and where its root filesystem starts.
type assembled struct {
	t    *testing.T
	path string
	res  *Result
}

func assembleT(t *testing.T, src rootfs.Source, opts Options) assembled {
	t.Helper()
	d, err := tryAssemble(t, src, opts)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	return d
}

func tryAssemble(t *testing.T, src rootfs.Source, opts Options) (assembled, error) {
	t.Helper()
	needTools(t)
	if opts.OutDir == "" {
		opts.OutDir = t.TempDir()
	}
	res, err := Assemble(context.Background(), src, opts)
	if err != nil {
		if entries, _ := os.ReadDir(opts.OutDir); len(entries) != 0 {
			t.Errorf("a failed assembly left %s behind", entries[0].Name())
		}
		return assembled{}, err
	}
	return assembled{t: t, path: res.Files[0], res: res}, nil
}

func (d assembled) fsPath() string {
	return d.path + "?offset=" + strconv.FormatInt(d.res.Layout.Root.Start, 10)
}

// debugfs runs one debugfs request against the disk's root filesystem.
func (d assembled) debugfs(req string) string {
	d.t.Helper()
	out, err := exec.Command("debugfs", "-R", req, d.fsPath()).CombinedOutput()
	if err != nil {
		d.t.Fatalf("debugfs %s: %v\n%s", req, err, out)
	}
	s := string(out)
	if i := strings.Index(s, "\n"); strings.HasPrefix(s, "debugfs ") && i >= 0 {
		s = s[i+1:]
	}
	return s
}

// fsck checks the root filesystem with e2fsck -fn: clean means no message
// beyond its passes and summary.
func (d assembled) fsck() {
	d.t.Helper()
	out, err := exec.Command("e2fsck", "-fn", d.fsPath()).CombinedOutput()
	extra := ""
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "Pass ") && !strings.HasPrefix(l, "e2fsck ") && !strings.HasPrefix(l, "root: ") {
			extra += l + "\n"
		}
	}
	if err != nil || extra != "" {
		d.t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
}

// The disk as a hostile.Tree, read with debugfs.
func (d assembled) Content(p string) (string, bool) {
	if !d.Exists(p) {
		return "", false
	}
	return d.debugfs("cat /" + p), true
}

func (d assembled) Exists(p string) bool {
	out, _ := exec.Command("debugfs", "-R", "stat /"+p, d.fsPath()).CombinedOutput()
	return !strings.Contains(string(out), "File not found")
}

func (d assembled) SameFile(p, q string) bool {
	a, b := inode(d.debugfs("stat /"+p)), inode(d.debugfs("stat /"+q))
	return a != "" && a == b
}

func (d assembled) Xattrs(p string) []string {
	var names []string
	for _, l := range strings.Split(d.debugfs("ea_list /"+p), "\n") {
		if n, _, ok := strings.Cut(strings.TrimSpace(l), " ("); ok && strings.Contains(n, ".") {
			names = append(names, n)
		}
	}
	return names
}

// inode pulls "Inode: N" out of debugfs stat output.
func inode(stat string) string {
	f := strings.Fields(stat)
	if len(f) > 1 && f[0] == "Inode:" {
		return f[1]
	}
	return ""
}

func layoutSource(t *testing.T, layers ...[]byte) rootfs.Source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.WriteLayout(dir, "test", layers...); err != nil {
		t.Fatal(err)
	}
	src, err := rootfs.Open("oci-layout:" + dir + ":test")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const acl = "\x02\x00\x00\x00\x01\x00\x07\x00\xff\xff\xff\xff\x04\x00\x05\x00\xff\xff\xff\xff\x08\x00\x05\x00\x04\x00\x00\x00\x10\x00\x05\x00\xff\xff\xff\xff\x20\x00\x05\x00\xff\xff\xff\xff"

// Layers through the whole assembly and our ext4 writer: what the guest
// will see, read back with debugfs, and a clean e2fsck.
func TestAssembleLayers(t *testing.T) {
	mtime := time.Unix(1700000000, 123456789)
	l0 := kernelLayer().
		Dir("etc", 0o755).File("etc/a", "a0", 0o644).
		Dir("data", 0o755).File("data/target", "T0", 0o644).Link("data/link", "data/target").
		Entry(tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "su").
		Entry(tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}}, "ping").
		Entry(tar.Header{Name: "var/log/journal/", Typeflag: tar.TypeDir, Mode: 0o2755, Gid: 999,
			PAXRecords: map[string]string{"SCHILY.xattr.system.posix_acl_access": acl, "SCHILY.xattr.user.note": "kept"}}, "").
		Entry(tar.Header{Name: "home/user/file", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000, ModTime: mtime, Format: tar.FormatPAX}, "mine").
		Entry(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "").
		Symlink("etc/link", "/etc/a").
		File("a/Größe-€", "utf8", 0o644)
	l1 := ocitest.NewTar().File("etc/a", "a1", 0o644).File("data/target", "T1", 0o644).Link("data/link2", "data/target")
	d := assembleT(t, layoutSource(t, l0.Bytes(), l1.Bytes()), Options{Firmware: disk.BIOS})
	d.fsck()
	for p, want := range map[string]string{"etc/a": "a1", "data/target": "T1", "data/link2": "T1", "data/link": "T0", "home/user/file": "mine", "a/Größe-€": "utf8"} {
		if got, _ := d.Content(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if !d.SameFile("data/target", "data/link2") || d.SameFile("data/link", "data/target") {
		t.Error("hardlinks wrong")
	}
	if st := d.debugfs("stat /usr/bin/su"); !strings.Contains(st, "Mode:  04755") || !strings.Contains(st, "User:     0") {
		t.Errorf("setuid lost: %s", st)
	}
	if st := d.debugfs("stat /home/user/file"); !strings.Contains(st, "User:  1000   Group:  1000") || !strings.Contains(st, "0x6553f100:1d6f3454") {
		t.Errorf("owner or nanosecond mtime lost: %s", st)
	}
	if ea := d.debugfs("ea_list /usr/bin/ping"); !strings.Contains(ea, "security.capability") {
		t.Errorf("capability lost: %s", ea)
	}
	// POSIX ACLs in ext4's own format (version 1, short entries), not the
	// VFS format the tar carried.
	// (ea_get converts back to the VFS format; ea_list shows the bytes.)
	if ea := d.debugfs("ea_list /var/log/journal"); !strings.Contains(ea, "system.posix_acl_access (28) = 01 00 00 00 01 00 07 00 04 00 05 00") {
		t.Errorf("ACL not in ext4 format: %s", ea)
	}
	if names := d.Xattrs("var/log/journal"); len(names) != 2 {
		t.Errorf("directory xattrs: %v", names)
	}
	if st := d.debugfs("stat /dev/null"); !strings.Contains(st, "Type: character special") || !strings.Contains(st, "Device major/minor number: 01:03") {
		t.Errorf("device node lost: %s", st)
	}
}

// The hostile corpus through the whole assembly and our ext4 writer: one
// clear error and nothing left in the output, or a clean filesystem with
// the right content.
func TestHostileCorpusOnDisk(t *testing.T) {
	needTools(t)
	for _, c := range hostile.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			layers := [][]byte{kernelLayer().Bytes()}
			if c.Base != nil {
				layers = append(layers, c.Base.Bytes())
			}
			layers = append(layers, c.Top.Bytes())
			d, err := tryAssemble(t, layoutSource(t, layers...), Options{Firmware: disk.BIOS})
			if c.Err != "" {
				var ue *usererr.Error
				if err == nil || !strings.Contains(err.Error(), c.Err) || !errors.As(err, &ue) {
					t.Fatalf("want one clear error with %q, got %v", c.Err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d.fsck()
			for _, p := range c.Check(d) {
				t.Error(p)
			}
		})
	}
}

// Any output path a user can type works: spaces, '?', '@@', ':' and ','
// reached tools' own file-name syntax before (debugfs "file?offset=",
// mtools "file@@offset", qemu-img options).
func TestOutputPathsAnyName(t *testing.T) {
	out := filepath.Join(t.TempDir(), "my vms?offset=0@@1:x,y")
	src := layoutSource(t, kernelLayer().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644,
		PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}, "x").Bytes())
	fs, _ := disk.ParseFormats("raw,qcow2")
	d := assembleT(t, src, Options{OutDir: out, Formats: fs})
	if len(d.res.Files) != 2 || filepath.Dir(d.res.Files[0]) != out || filepath.Dir(d.res.Files[1]) != out {
		t.Fatalf("files %v", d.res.Files)
	}
	// Read back through a plain copy: debugfs's own syntax is the test's
	// problem, not the product's.
	plain := filepath.Join(t.TempDir(), "plain.img")
	if b, err := os.ReadFile(d.path); err != nil || os.WriteFile(plain, b, 0o644) != nil {
		t.Fatal(err)
	}
	d.path = plain
	if names := d.Xattrs("f"); len(names) != 1 || names[0] != "user.k" {
		t.Errorf("xattrs lost: %v", names)
	}
}

func TestDirSourceAssemble(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "boot"), 0o755)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-2"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-2"), []byte("i"), 0o644)
	os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	os.WriteFile(filepath.Join(root, "sbin/init"), []byte("#!/bin/sh\n"), 0o755)
	xattr := ocitest.TrickyDir(t, root, 1<<30)
	src, _ := rootfs.Open(root)
	d := assembleT(t, src, Options{Firmware: disk.BIOS})
	d.fsck()
	if !d.SameFile("f", "g") || !strings.Contains(d.debugfs("stat /f"), "Mode:  04755") {
		t.Error("hardlink or mode lost")
	}
	if xattr && !strings.Contains(d.debugfs("ea_get /f user.c2vm"), "kept") {
		t.Error("xattr lost")
	}
	if st := d.debugfs("stat /s"); !strings.Contains(st, "/nonexistent/outside") {
		t.Errorf("symlink target changed: %s", st)
	}
	// 1 GiB logical, one block allocated: the hole is kept.
	if st := d.debugfs("stat /sparse"); !strings.Contains(st, "Size: 1073741828") || !strings.Contains(st, "Blockcount: 8") {
		t.Errorf("sparse file: %s", st)
	}
	if d.res.Layout.DiskBytes > 200<<20 {
		t.Errorf("a 1 GiB hole made a %d byte disk", d.res.Layout.DiskBytes)
	}
}

// TestESPTimes reads the ESP's file dates back: 1980-01-01 without
// SOURCE_DATE_EPOCH (1970 would wrap to 2098 in FAT), the given day with it,
// in UTC whatever the builder's time zone.
func TestESPTimes(t *testing.T) {
	for _, c := range []struct{ sde, day string }{{"", "1980-01-01"}, {"0", "1980-01-01"}, {"1700000000", "2023-11-14"}} {
		t.Setenv("SOURCE_DATE_EPOCH", c.sde)
		t.Setenv("TZ", "Pacific/Kiritimati") // UTC+14: a local stamp would be the next day
		d := assembleT(t, layoutSource(t, kernelLayer().Bytes()), Options{})
		img := fmt.Sprintf("%s@@%d", d.path, d.res.Layout.ESP.Start)
		cmd := exec.Command("mdir", "-i", img, "::/EFI/BOOT")
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mdir: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "BOOTX64") && !strings.Contains(l, c.day) {
				t.Errorf("SOURCE_DATE_EPOCH=%q: want %s, got %q", c.sde, c.day, l)
			}
		}
		if !strings.Contains(string(out), "BOOTX64") {
			t.Errorf("no BOOTX64.EFI on the ESP:\n%s", out)
		}
	}
}
