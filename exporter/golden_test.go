package exporter

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
)

// The golden digests pin the bytes of a small fixed tree assembled with
// SOURCE_DATE_EPOCH, so any change to what c2vm writes is deliberate: a
// change that means to alter the bytes updates them here, and says why in
// its commit. The root filesystem is c2vm's alone. The disk's digest leaves
// out the BIOS boot partition and the ESP, whose bytes come from GRUB,
// dosfstools and mtools as Debian ships them (a point release may change
// them); the partition table, the MBR's patched fields and the root are in.
const (
	goldenRootFS = "b2127ee3815ca3568403d2002247132b79b9e395d2f0cc79eaf2ab81f84ed676"
	goldenDisk   = "df7f6733288cf7b64918fc54f93f531ff5d87a19ad88e4335505ce7f7dbc9f4f"
)

// goldenTree has what a root filesystem carries: directories, one large
// enough for an htree, a hardlink, fast and slow symlinks, a device, a
// fifo, setuid, xattrs in the inode and in a block, an ACL, a file of
// several extents' worth of blocks.
func goldenTree() []byte {
	tr := kernelLayer().Dir("etc", 0o755).Dir("many", 0o755).Dir("var/log", 0o755)
	for i := range 300 {
		tr.File(fmt.Sprintf("many/file-%03d", i), strings.Repeat("x", i), 0o644)
	}
	tr.File("etc/hostname", "golden\n", 0o644).
		Link("etc/hostname.link", "etc/hostname").
		Symlink("etc/short", "hostname").
		Symlink("etc/long", strings.Repeat("d/", 40)+"target").
		Entry(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "").
		Entry(tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, "").
		File("usr/bin/su", "su", 0o4755).
		Entry(tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}}, "ping").
		Entry(tar.Header{Name: "var/log/journal", Typeflag: tar.TypeDir, Mode: 0o2755,
			PAXRecords: map[string]string{"SCHILY.xattr.system.posix_acl_access": acl, "SCHILY.xattr.user.big": strings.Repeat("b", 3000)}}, "").
		File("big.bin", strings.Repeat("0123456789abcdef", 64<<10), 0o644)
	return tr.Bytes()
}

func TestGoldenDigest(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	d := assembleT(t, layoutSource(t, goldenTree()), Options{})
	img, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	l := d.res.Layout
	root := sha256.Sum256(img[l.Root.Start : l.Root.Start+l.Root.Size])
	for _, p := range []*disk.Partition{l.BIOSBoot, l.ESP} {
		clear(img[p.Start : p.Start+p.Size])
	}
	// GRUB's boot.img, but for the LBA of core.img that c2vm writes at 0x5c.
	clear(img[:0x5c])
	clear(img[0x64:440])
	whole := sha256.Sum256(img)
	if got := hex.EncodeToString(root[:]); got != goldenRootFS {
		t.Errorf("root filesystem digest %s, pinned %s: the bytes c2vm writes changed", got, goldenRootFS)
	}
	if got := hex.EncodeToString(whole[:]); got != goldenDisk {
		t.Errorf("disk digest (GRUB and ESP left out) %s, pinned %s: the bytes c2vm writes changed", got, goldenDisk)
	}
}
