package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func vfsACL(entries ...[3]uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 2)
	for _, e := range entries {
		b = le.AppendUint16(b, uint16(e[0]))
		b = le.AppendUint16(b, uint16(e[1]))
		b = le.AppendUint32(b, e[2])
	}
	return b
}

// contentTree has one of every kind of entry.
func contentTree() []entry {
	long := strings.Repeat("L", 255)
	slow := "/" + strings.Repeat("s", 4094)
	acl := vfsACL([3]uint32{aclUserObj, 7, 0xffffffff}, [3]uint32{aclUser, 5, 1000},
		[3]uint32{aclGroupObj, 5, 0xffffffff}, [3]uint32{aclMask, 7, 0xffffffff}, [3]uint32{aclOther, 0, 0xffffffff})
	setuid := reg("usr/bin/su", 0o4755, []byte("#!/bin/su\n"))
	setuid.file.UID, setuid.file.GID = 100000, 200000
	setuid.file.Xattrs = []Xattr{{"security.capability", bytes.Repeat([]byte{1}, 20)}}
	big := reg("big-xattr", 0o644, []byte("x"))
	big.file.Xattrs = []Xattr{{"user.big", bytes.Repeat([]byte("B"), 3000)}, {"user.small", []byte("s")},
		{"trusted.t", []byte("tt")}}
	old := reg("old", 0o600, []byte("old\n"))
	old.file.Mtime = time.Date(1960, 1, 2, 3, 4, 5, 6, time.UTC)
	old.file.Atime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) // before ext4's range: clamped
	future := reg("future", 0o600, []byte("future\n"))
	future.file.Mtime = time.Date(2100, 1, 2, 3, 4, 5, 999999999, time.UTC)
	future.file.Crtime = time.Date(2040, 1, 1, 0, 0, 0, 1, time.UTC)
	journal := dir("var/log/journal", 0o2755)
	journal.file.Xattrs = []Xattr{{"system.posix_acl_access", acl}, {"system.posix_acl_default", acl}}
	sparse := entry{path: "sparse", file: File{Mode: sIFREG | 0o644, Size: 10 << 20, Mtime: testTime,
		Data: []Segment{{100, 50}, {5 << 20, 5000}, {5<<20 + 8192, 1}}}}
	sparse.data = pattern(5051, 3)
	tmp := dir("tmp", 0o1777)
	tmp.file.Xattrs = []Xattr{{"user.x", []byte("in-inode")}}
	return []entry{
		dir("etc", 0o755),
		reg("etc/hostname", 0o644, []byte("c2vm\n")),
		reg("etc/empty", 0o644, nil),
		reg("etc/block", 0o644, pattern(4096, 1)),
		reg("etc/odd", 0o644, pattern(12345, 2)),
		dir("usr", 0o755), dir("usr/bin", 0o755), setuid,
		{path: "usr/bin/su-link", link: "usr/bin/su"},
		{path: "etc/su-link2", link: "usr/bin/su"},
		tmp, big, old, future,
		dir("var", 0o755), dir("var/log", 0o755), journal,
		{path: "dev", file: File{Mode: sIFDIR | 0o755}},
		{path: "dev/null", file: File{Mode: sIFCHR | 0o666, DevMajor: 1, DevMinor: 3}},
		{path: "dev/nvme", file: File{Mode: sIFBLK | 0o660, DevMajor: 259, DevMinor: 70000, GID: 6}},
		{path: "dev/fifo", file: File{Mode: sIFIFO | 0o644}},
		symlinkEntry("fast", "/etc/hostname"),
		symlinkEntry("slow", slow),
		symlinkEntry("slow60", strings.Repeat("6", 60)),
		reg(long, 0o644, []byte("long name\n")),
		reg("Größe-€-日本", 0o644, []byte("utf8\n")),
		sparse,
		{path: "allhole", file: File{Mode: sIFREG | 0o644, Size: 1 << 20, Data: []Segment{}}},
		// The directory's final metadata comes late: new mode, children kept.
		{path: "etc", file: File{Mode: sIFDIR | 0o700, UID: 5, Mtime: testTime}},
	}
}

func TestContent(t *testing.T) {
	p := testParams(64<<20, 2000)
	p.Offset = 1 << 20
	img := build(t, p, contentTree())
	fsck(t, img)
	st := func(path string) string { return debugfs(t, img, "stat \""+path+"\"") }
	cat := func(path string) string { return debugfs(t, img, "cat \""+path+"\"") }

	if got := cat("/etc/hostname"); got != "c2vm\n" {
		t.Errorf("hostname %q", got)
	}
	for i, name := range []string{"/etc/block", "/etc/odd"} {
		want := pattern([]int{4096, 12345}[i], uint64(i+1))
		if got := cat(name); got != string(want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", name, len(got), len(want))
		}
	}
	mustContain(t, "empty", st("/etc/empty"), "Size: 0", "Blockcount: 0")
	mustContain(t, "allhole", st("/allhole"), "Size: 1048576", "Blockcount: 0")
	mustContain(t, "etc", st("/etc"), "Mode:  0700", "User:     5", "Links: 2")
	mustContain(t, "etc ls", debugfs(t, img, "ls /etc"), "hostname", "odd", "su-link2")
	mustContain(t, "su", st("/usr/bin/su"), "Mode:  04755", "User: 100000   Group: 200000", "Links: 3")
	mustContain(t, "tmp", st("/tmp"), "Mode:  01777")
	mustContain(t, "journal dir", st("/var/log/journal"), "Mode:  02755")
	mustContain(t, "root", st("/"), "Links: 8") // . .. and 6 subdirectories incl. lost+found
	mustContain(t, "var", st("/var"), "Links: 3")
	mustContain(t, "null", st("/dev/null"), "Type: character special", "Device major/minor number: 01:03")
	mustContain(t, "nvme", st("/dev/nvme"), "Type: block special", "Device major/minor number: 259:70000")
	mustContain(t, "fifo", st("/dev/fifo"), "Type: FIFO")
	mustContain(t, "fast", st("/fast"), `Fast link dest: "/etc/hostname"`)
	mustContain(t, "slow", st("/slow"), "Size: 4095", "Blockcount: 8")
	mustContain(t, "slow60", st("/slow60"), "Size: 60", "Blockcount: 8")
	if got := cat("/slow"); got != "/"+strings.Repeat("s", 4094) {
		t.Errorf("slow symlink target: %d bytes", len(got))
	}
	mustContain(t, "long", cat("/"+strings.Repeat("L", 255)), "long name")
	mustContain(t, "utf8", cat("/Größe-€-日本"), "utf8")
	checkTimes(t, st)
	checkXattrs(t, img)
	checkSparse(t, img, st)
}

func checkTimes(t *testing.T, st func(string) string) {
	// debugfs prints seconds:extra and a date; the extra field is nsec<<2 |
	// epoch bits. Only the raw fields are checked: e2fsprogs decodes the
	// seconds as unsigned, so its dates for 1901-1970 and 2038-2106 are off
	// by 2^32 s; the kernel reads them signed, as they are encoded.
	mustContain(t, "hostname times", st("/etc/hostname"),
		fmt.Sprintf("mtime: 0x%08x:%08x", uint32(testTime.Unix()), 123456789<<2),
		fmt.Sprintf("crtime: 0x%08x:%08x", uint32(testTime.Unix()), 123456789<<2))
	old := time.Date(1960, 1, 2, 3, 4, 5, 6, time.UTC)
	mustContain(t, "old", st("/old"), fmt.Sprintf("mtime: 0x%08x:%08x", uint32(int32(old.Unix())), 6<<2),
		"atime: 0x80000000:00000000")
	f := time.Date(2100, 1, 2, 3, 4, 5, 999999999, time.UTC)
	mustContain(t, "future", st("/future"), fmt.Sprintf("mtime: 0x%08x:%08x", uint32(f.Unix()), 999999999<<2|1),
		"crtime: 0x83aa7e80:00000005")
}

func checkXattrs(t *testing.T, img string) {
	ea := func(p string) string { return debugfs(t, img, "ea_list \""+p+"\"") }
	mustContain(t, "caps", ea("/usr/bin/su"), "security.capability (20)")
	mustContain(t, "big", ea("/big-xattr"), "user.big (3000)", "user.small (1)", `trusted.t (2) = "tt"`)
	mustContain(t, "tmp", ea("/tmp"), `user.x (8) = "in-inode"`)
	if st := debugfs(t, img, "stat /big-xattr"); !regexp.MustCompile(`File ACL: [1-9]`).MatchString(st) {
		t.Errorf("big xattr not in a block:\n%s", st)
	}
	if st := debugfs(t, img, "stat /tmp"); !strings.Contains(st, "File ACL: 0") {
		t.Errorf("small xattr not in the inode:\n%s", st)
	}
	// Raw, the ACL is in ext4's format (version 1, short entries);
	// debugfs converts it back to the VFS format otherwise.
	raw := debugfs(t, img, "ea_get -r -x /var/log/journal system.posix_acl_access")
	mustContain(t, "raw acl", raw, "01 00 00 00 01 00 07 00 02 00 05 00 e8 03 00 00 04 00 05 00 10 00 07 00 20 00 00 00")
	vfs := debugfs(t, img, "ea_get -x /var/log/journal system.posix_acl_default")
	mustContain(t, "vfs acl", vfs, "02 00 00 00 01 00 07 00 00 00 00 00 02 00 05 00 e8 03 00 00")
}

func checkSparse(t *testing.T, img string, st func(string) string) {
	// Data in blocks 0, 1280-1281 and 1282 of a 2560-block file: 4 blocks.
	s := st("/sparse")
	mustContain(t, "sparse", s, "Size: 10485760", "Blockcount: 32")
	mustContain(t, "sparse extents", debugfs(t, img, "ex /sparse"), "0 -     0", "1280 -  1282")
	want := make([]byte, 10<<20)
	d := pattern(5051, 3)
	copy(want[100:], d[:50])
	copy(want[5<<20:], d[50:5050])
	want[5<<20+8192] = d[5050]
	if got := debugfs(t, img, "cat /sparse"); got != string(want) {
		t.Errorf("sparse content differs")
	}
}
