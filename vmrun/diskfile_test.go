package vmrun

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// mbrDisk writes a raw disk of size bytes whose first sector carries a
// boot signature.
func mbrDisk(t *testing.T, dir string, size int) string {
	t.Helper()
	b := make([]byte, size)
	b[510], b[511] = 0x55, 0xAA
	p := filepath.Join(dir, "mbr.img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	needTool(t, "qemu-img")
	if b, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %q: %v\n%s", args, err, b)
	}
}

// prepareRefuses runs prepare as c2vm run does and wants an error holding
// every part of want, with the disk unchanged.
func prepareRefuses(t *testing.T, disk string, want ...string) {
	t.Helper()
	before := fileDigest(t, disk)
	start := time.Now()
	p, err := prepare(context.Background(), Options{Disk: disk, Accel: "tcg", DiskSize: "keep"})
	if p != nil {
		os.RemoveAll(p.work)
	}
	if err == nil {
		t.Fatalf("%s was accepted", disk)
	}
	for _, w := range append(want, "fix: ") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %s", d)
	}
	if fileDigest(t, disk) != before {
		t.Errorf("%s changed", disk)
	}
}

func fileDigest(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// The attack the review found: a text VMDK whose extent is a host file.
// c2vm run must neither read it (the firmware probe) nor boot it.
func TestVMDKDescriptorNamingHostFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("host secret\n"), 0o600)
	disk := filepath.Join(dir, "linux.vmdk")
	desc := "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 8 FLAT \"" + secret + "\" 0\n"
	os.WriteFile(disk, []byte(desc), 0o644)
	prepareRefuses(t, disk, "reads other files", `extent "`+secret+`"`, "--allow-external")
	// The same descriptor under another name, and without its comment.
	bare := filepath.Join(dir, "linux.img")
	os.WriteFile(bare, []byte(strings.TrimPrefix(desc, "# Disk DescriptorFile\n")), 0o644)
	prepareRefuses(t, bare, "reads other files")
	img, err := inspectDisk(disk, true)
	if err != nil || img.Format != "vmdk" {
		t.Errorf("--allow-external: %+v %v", img, err)
	}
}

func TestQcow2NamingOtherFiles(t *testing.T) {
	dir := t.TempDir()
	base := mbrDisk(t, dir, 1<<20)
	backed := filepath.Join(dir, "backed.qcow2")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", backed)
	prepareRefuses(t, backed, "backing file", base)
	data := filepath.Join(dir, "data.raw")
	external := filepath.Join(dir, "external.img") // a qcow2, whatever its name
	qemuImg(t, "create", "-q", "-f", "qcow2", "-o", "data_file="+data, external, "1M")
	prepareRefuses(t, external, "external data file")
}

func TestVMDKParent(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", mbrDisk(t, dir, 1<<20), parent)
	child := filepath.Join(dir, "child.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", "-b", parent, "-F", "vmdk", child)
	prepareRefuses(t, child, "parent")
}

// A differencing VHD (disk type 4) cannot be made with qemu-img: the
// footer is written by hand.
func TestVHDDifferencing(t *testing.T) {
	footer := make([]byte, 512)
	copy(footer, "conectix")
	binary.BigEndian.PutUint32(footer[60:], 4)
	disk := filepath.Join(t.TempDir(), "linux.vhd")
	os.WriteFile(disk, append(footer, make([]byte, 4096)...), 0o644)
	prepareRefuses(t, disk, "parent disk")
}

// Self-contained disks of every format c2vm writes are read by their
// headers, whatever their names.
func TestInspectFormats(t *testing.T) {
	dir := t.TempDir()
	raw := mbrDisk(t, dir, 4<<20)
	for _, tc := range []struct{ format, opts, name string }{
		{"qcow2", "", "a.img"}, {"vmdk", "", "b.qcow2"}, {"vmdk", "subformat=streamOptimized", "c"},
		{"vhdx", "", "d.vhd"}, {"vdi", "", "e.vmdk"}, {"vpc", "", "f.vhdx"}, {"vpc", "subformat=fixed,force_size=on", "g.raw"},
	} {
		out := filepath.Join(dir, tc.name)
		args := []string{"convert", "-f", "raw", "-O", tc.format}
		if tc.opts != "" {
			args = append(args, "-o", tc.opts)
		}
		qemuImg(t, append(args, raw, out)...)
		img, err := inspectDisk(out, false)
		if err != nil || img.Format != tc.format || len(img.External) != 0 {
			t.Errorf("%s %s: %+v %v", tc.format, tc.opts, img, err)
			continue
		}
		head, err := readHead(context.Background(), out, img.Format)
		if err != nil || checkBootable(out, head) != nil {
			t.Errorf("%s: first sector not read back: %v", tc.name, err)
		}
	}
	named := filepath.Join(dir, "raw.qcow2")
	os.Rename(raw, named)
	if img, err := inspectDisk(named, false); err != nil || img.Format != "raw" {
		t.Errorf("a raw disk named .qcow2: %+v %v", img, err)
	}
}

// tarFile writes a tar of the named entries, gzip'd when zip is set.
func tarFile(t *testing.T, path string, zip bool, names ...string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 1024, Typeflag: tar.TypeReg})
		tw.Write(make([]byte, 1024))
	}
	tw.Close()
	b := buf.Bytes()
	if zip {
		b = ocitest.Gzip(b)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An OVA and a GCE image are archives of a disk: refused at once, the disk
// inside named, the file untouched.
func TestArchivesRefused(t *testing.T) {
	dir := t.TempDir()
	ova := filepath.Join(dir, "linux.ova")
	tarFile(t, ova, false, "linux.ovf", "linux.mf", "linux-disk1.vmdk")
	prepareRefuses(t, ova, "tar archive holding the disk linux-disk1.vmdk", "tar -xf "+ova+" linux-disk1.vmdk && c2vm run linux-disk1.vmdk")
	gce := filepath.Join(dir, "linux-gce.tar.gz")
	tarFile(t, gce, true, "disk.raw")
	prepareRefuses(t, gce, "gzip archive holding the disk disk.raw", "tar -xzf")
	// A name that is not safe to type is not offered as a command.
	odd := filepath.Join(dir, "odd.ova")
	tarFile(t, odd, false, "x;touch pwned.vmdk")
	prepareRefuses(t, odd, "is a tar archive, not a disk")
	for _, tc := range []struct{ name, magic string }{{"x.xz", "\xfd7zXZ\x00"}, {"x.zst", "\x28\xb5\x2f\xfd"}, {"x.zip", "PK\x03\x04"}} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, append([]byte(tc.magic), make([]byte, 1024)...), 0o644)
		prepareRefuses(t, p, "archive, not a disk")
	}
}

// A file with no partition table cannot boot: refused, not waited on.
func TestNotADisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(p, []byte("just some text\n"), 0o644)
	prepareRefuses(t, p, "not a bootable disk")
}
