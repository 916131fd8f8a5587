package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The checksum seed mke2fs 1.47.2 recorded for UUID 11111111-2222-3333-4444-555555555555.
func TestChecksumSeed(t *testing.T) {
	u := [16]byte{0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55}
	if got := crc32c(^uint32(0), u[:]); got != 0x643dbf5b {
		t.Fatalf("seed %#x, want 0x643dbf5b", got)
	}
}

func TestHashMatchesDebugfs(t *testing.T) {
	img := build(t, testParams(16<<20, 64), nil)
	p := testParams(0, 0)
	var seed [4]uint32
	for i := range seed {
		seed[i] = binary.LittleEndian.Uint32(p.HashSeed[4*i:])
	}
	re := regexp.MustCompile(`is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)`)
	names := []string{"a", "hello", "lost+found", "Größe-€", "日本語のファイル名",
		strings.Repeat("x", 31), strings.Repeat("y", 32), strings.Repeat("z", 33),
		strings.Repeat("é", 100), strings.Repeat("n", 255)}
	for _, n := range names {
		out := debugfs(t, img, fmt.Sprintf("dx_hash -h half_md4 -s 01020304-0506-0708-090a-0b0c0d0e0f10 %s", n))
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dx_hash %q: %s", n, out)
		}
		h, minor := halfMD4(n, &seed)
		if got := fmt.Sprintf("%x %x", h, minor); got != m[1]+" "+m[2] {
			t.Errorf("hash of %q: %s, debugfs %s %s", n, got, m[1], m[2])
		}
	}
}

func TestTimeEncoding(t *testing.T) {
	for _, c := range []struct {
		t         time.Time
		lo, extra uint32
	}{
		{time.Unix(0, 0), 0, 0},
		{time.Unix(-1, 5), 0xffffffff, 5 << 2},
		{time.Unix(1<<31, 0), 0x80000000, 1},
		{time.Unix(1<<31-1, 999999999), 0x7fffffff, 999999999 << 2},
		{time.Unix(-1<<31, 0), 0x80000000, 0},
		{time.Unix(-1<<40, 0), 0x80000000, 0},               // clamped to 1901
		{time.Unix(1<<40, 0), 0x7fffffff, 999999999<<2 | 2}, // clamped to 2310
		{time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), 0x7fffffff, 999999999<<2 | 2},
		{time.Date(2100, 1, 1, 0, 0, 0, 7, time.UTC), 0x0f4865700 & 0xffffffff, 7<<2 | 1},
	} {
		lo, extra := stamp(c.t).encode()
		if lo != c.lo || extra != c.extra {
			t.Errorf("%v: %#x %#x, want %#x %#x", c.t, lo, extra, c.lo, c.extra)
		}
	}
}

func TestACLToDisk(t *testing.T) {
	le := binary.LittleEndian
	vfs := le.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{aclUserObj, 7, 0xffffffff}, {aclUser, 5, 1000}, {aclGroupObj, 5, 0xffffffff}, {aclGroup, 4, 65534}, {aclMask, 7, 0xffffffff}, {aclOther, 0, 0xffffffff}} {
		vfs = le.AppendUint16(vfs, uint16(e[0]))
		vfs = le.AppendUint16(vfs, uint16(e[1]))
		vfs = le.AppendUint32(vfs, e[2])
	}
	got, err := aclToDisk(vfs)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 0, 0, 0, 1, 0, 7, 0, 2, 0, 5, 0, 0xe8, 3, 0, 0, 4, 0, 5, 0, 8, 0, 4, 0, 0xfe, 0xff, 0, 0, 0x10, 0, 7, 0, 0x20, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0}, append(le.AppendUint32(nil, 2), 0x40, 0, 0, 0, 0, 0, 0, 0), {2, 0, 0, 0, 1}} {
		if _, err := aclToDisk(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func TestBackupGroups(t *testing.T) {
	var got []uint64
	for g := uint64(0); g < 400; g++ {
		if hasBackup(g) {
			got = append(got, g)
		}
	}
	want := []uint64{0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for _, n := range []uint64{0, 1, 2, 3, 4, 10, 26, 400, 100000} {
		c := uint64(0)
		for g := uint64(0); g < n; g++ {
			if hasBackup(g) {
				c++
			}
		}
		if countBackups(n) != c {
			t.Errorf("countBackups(%d) = %d, want %d", n, countBackups(n), c)
		}
	}
}
