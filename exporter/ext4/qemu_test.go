package ext4

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestQEMUBoot boots a real kernel on a filesystem written from a Debian
// tree (C2VM_QEMU_TREE, with vmlinuz and initrd.img at its top), under
// QEMU with TCG. A check script runs as init: the root must be mounted
// read-write without an ext4 complaint, a named-user ACL must grant access,
// and resize2fs must grow the mounted filesystem online (the ioctl
// systemd-growfs uses) to the enlarged disk. e2fsck checks the result,
// grown (the kernel converts it to meta_bg on the way) and written to.
func TestQEMUBoot(t *testing.T) {
	tree := os.Getenv("C2VM_QEMU_TREE")
	if tree == "" {
		t.Skip("set C2VM_QEMU_TREE to a root tree with vmlinuz and initrd.img")
	}
	qemu := tool(t, "qemu-system-x86_64")
	img := filepath.Join(t.TempDir(), "root.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(1536<<20, 60000)
	f.Truncate(p.Size)
	w, err := NewWriter(f, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTree(w, tree); err != nil {
		t.Fatal(err)
	}
	addCheckScript(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Truncate(3 * p.Size) // the disk grows; the filesystem follows at boot
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "1024", "-nographic", "-no-reboot",
		"-kernel", filepath.Join(tree, "vmlinuz"), "-initrd", filepath.Join(tree, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0 panic=-1 init=/c2vm-check",
		"-drive", "file="+img+",format=raw,if=virtio").CombinedOutput()
	log := string(out)
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, log)
	}
	for _, want := range []string{"C2VM mount: /dev/vda / ext4 rw", "C2VM written: hello", "C2VM acl: ok",
		"is now 1179648 (4k) blocks long", "C2VM done"} {
		if !strings.Contains(log, want) {
			t.Errorf("boot log lacks %q", want)
		}
	}
	// Any ext4 or jbd2 complaint: errors, warnings, bad checksums.
	bad := regexp.MustCompile(`EXT4-fs (error|warning)|EXT4-fs .*(checksum|corrupt|invalid)|JBD2: |Kernel panic`)
	if m := bad.FindString(log); m != "" {
		t.Errorf("boot log has %q", m)
	}
	if t.Failed() {
		t.Log(log)
	}
	fsck(t, img)
}

func addCheckScript(t *testing.T, w *Writer) {
	script := `#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo "C2VM mount: $(grep ' / ' /proc/mounts)"
echo hello > /c2vm-written && echo "C2VM written: $(cat /c2vm-written)"
setpriv --reuid=65534 --regid=65534 --clear-groups ls /c2vm-acl >/dev/null && echo "C2VM acl: ok"
resize2fs /dev/vda
dmesg | grep -i ext4
mount -o remount,ro / && echo "C2VM done"
echo o > /proc/sysrq-trigger
sleep 10
`
	err := w.Create("c2vm-check", &File{Mode: sIFREG | 0o755, Size: int64(len(script))}, strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	acl := vfsACL([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclUser, 5, 65534},
		[3]uint32{aclGroupObj, 0, 0}, [3]uint32{aclMask, 5, 0}, [3]uint32{aclOther, 0, 0})
	err = w.Create("c2vm-acl", &File{Mode: sIFDIR | 0o750, Xattrs: []Xattr{{"system.posix_acl_access", acl}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// writeTree copies a directory tree with owners, modes, times, devices and
// xattrs (hardlinks as links).
func writeTree(w *Writer, root string) error {
	seen := map[[2]uint64]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFSOCK {
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR && st.Nlink > 1 {
			if target, ok := seen[key]; ok {
				return w.Link(rel, target)
			}
			seen[key] = rel
		}
		f := &File{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
			Mtime: time.Unix(st.Mtim.Unix()), Atime: time.Unix(st.Atim.Unix()), Ctime: time.Unix(st.Ctim.Unix()),
			DevMajor: unix.Major(st.Rdev), DevMinor: unix.Minor(st.Rdev), Xattrs: xattrsOf(p)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			f.Linkname, err = os.Readlink(p)
			f.Size = 0
		case syscall.S_IFREG:
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			return w.Create(rel, f, src)
		default:
			f.Size = 0
		}
		if err != nil {
			return err
		}
		return w.Create(rel, f, nil)
	})
}

var xattrBuf = make([]byte, 64<<10)

func xattrsOf(p string) []Xattr {
	n, err := unix.Llistxattr(p, xattrBuf)
	if err != nil || n == 0 {
		return nil
	}
	names := string(xattrBuf[:n-1])
	var xs []Xattr
	for _, name := range strings.Split(names, "\x00") {
		if m, err := unix.Lgetxattr(p, name, xattrBuf); err == nil {
			xs = append(xs, Xattr{name, bytes.Clone(xattrBuf[:m])})
		}
	}
	return xs
}
