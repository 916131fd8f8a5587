package vmrun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
)

// testFS opens the root filesystem of a test disk.
func testFS(t testing.TB, disk string) *extFS {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fs, err := openExtFS(io.NewSectionReader(f, testRootStart, testRootSize), testRootSize)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func readPath(fs *extFS, p string, follow bool, max int64) (string, error) {
	n, err := fs.lookup(p, follow)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = fs.readFile(n, &b, max)
	return b.String(), err
}

// TestExtFSLookup reads files through a hash-tree directory, links
// (relative, absolute, out of the root and back) and holes.
func TestExtFSLookup(t *testing.T) {
	files := map[string]testEntry{
		"etc/os-release": {data: "ID=test\n"},
		"up":             {link: "../../../etc"},
		"abs":            {link: "/etc/os-release"},
		"loop":           {link: "loop"},
		"hole":           {size: 3<<20 + 5},
		"many/a/deep":    {data: "deep"},
	}
	for i := range 400 {
		files[fmt.Sprintf("many/file-%03d", i)] = testEntry{data: fmt.Sprint(i)}
	}
	fs := testFS(t, testDisk(t, appGrubCfg(testArgs), files))
	for _, c := range []struct {
		path, want string
		follow     bool
	}{
		{"/etc/os-release", "ID=test\n", false},
		{"/up/os-release", "ID=test\n", true},
		{"abs", "ID=test\n", true},
		{"/many/file-377", "377", false},
		{"/many/./a/../a/deep", "deep", false},
		{"/../../many/file-007", "7", false},
	} {
		if got, err := readPath(fs, c.path, c.follow, 1<<20); err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	if got, err := readPath(fs, "/hole", false, 4<<20); err != nil || len(got) != 3<<20+5 || strings.Trim(got, "\x00") != "" {
		t.Errorf("hole: %d bytes, %v", len(got), err)
	}
	for p, want := range map[string]string{
		"/up/os-release":                  "a symlink is on the way",
		"/loop":                           "more than 8 symlinks",
		"/many/file-400":                  "no such file",
		"/etc/os-release/x":               "not a directory on the way",
		"/hole":                           "file too large",
		strings.Repeat("/.", 80) + "/etc": "more than 64 path components",
		"/many/file-001/../../etc":        "not a directory on the way",
	} {
		follow := p != "/up/os-release"
		if _, err := readPath(fs, p, follow, 1<<20); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", p, err, want)
		}
	}
}

// TestExtFSRefuses checks superblocks this reader must not read.
func TestExtFSRefuses(t *testing.T) {
	sb := func(edit func(b []byte)) []byte {
		b := make([]byte, 4096)
		s := b[1024:]
		binary.LittleEndian.PutUint16(s[0x38:], extSuperMagic)
		binary.LittleEndian.PutUint32(s[0x4C:], 1)
		binary.LittleEndian.PutUint32(s[0x60:], extFiletype|extExtents)
		binary.LittleEndian.PutUint16(s[0x58:], 256)
		binary.LittleEndian.PutUint32(s[0x18:], 2)
		binary.LittleEndian.PutUint32(s[0x4:], 1)
		binary.LittleEndian.PutUint32(s[0x20:], 32768)
		binary.LittleEndian.PutUint32(s[0x28:], 16)
		edit(s)
		return b
	}
	for name, c := range map[string]struct {
		edit func(s []byte)
		want string
	}{
		"not ext":          {func(s []byte) { s[0x38] = 0 }, "not an ext4 filesystem"},
		"needs recovery":   {func(s []byte) { binary.LittleEndian.PutUint32(s[0x60:], extFiletype|0x4) }, "ext4 features 0x6"},
		"no filetype":      {func(s []byte) { binary.LittleEndian.PutUint32(s[0x60:], extExtents) }, "ext4 features 0x40"},
		"huge blocks":      {func(s []byte) { binary.LittleEndian.PutUint32(s[0x18:], 40) }, "block size"},
		"odd inodes":       {func(s []byte) { binary.LittleEndian.PutUint16(s[0x58:], 300) }, "inode size 300"},
		"beyond partition": {func(s []byte) { binary.LittleEndian.PutUint32(s[0x4:], 1<<30) }, "in a partition of"},
		"no groups":        {func(s []byte) { binary.LittleEndian.PutUint32(s[0x28:], 0) }, "empty geometry"},
	} {
		b := sb(c.edit)
		if _, err := openExtFS(bytes.NewReader(b), 1<<20); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzExtFS changes bytes of a small filesystem's used blocks and reads
// it: the reader must return, without panicking, whatever the bytes say.
// Each input is 5-byte records: an offset into the used blocks, and a
// byte to XOR there.
func FuzzExtFS(f *testing.F) {
	img, used := fuzzImage(f)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0x4, 0x38, 0xFF})
	f.Fuzz(func(t *testing.T, edits []byte) {
		b := append([]byte(nil), img...)
		for ; len(edits) >= 5; edits = edits[5:] {
			off := int(binary.LittleEndian.Uint32(edits)) % (len(used) * 4096)
			b[used[off/4096]*4096+off%4096] ^= edits[4]
		}
		fs, err := openExtFS(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, p := range []string{"/.c2vm/vmlinuz", "/vmlinuz", "/etc/c2vm/boot.env", "/many/file-099"} {
			if _, err := readPath(fs, p, true, 1<<20); err != nil && errors.Is(err, io.ErrShortWrite) {
				t.Fatal(err)
			}
		}
	})
}

// fuzzImage is a small root filesystem and the indexes of its blocks that
// are not all zeros.
func fuzzImage(f *testing.F) ([]byte, []int) { return fuzzImageT(f) }

func fuzzImageT(f testing.TB) ([]byte, []int) {
	files := appFiles([]byte("kernel"), []byte("initrd"))
	files["vmlinuz"] = testEntry{link: ".c2vm/vmlinuz"}
	files["etc/c2vm/boot.env"] = testEntry{data: "# GRUB Environment Block\nc2vm_cmdline=x\n"}
	for i := range 100 {
		files[fmt.Sprintf("many/file-%03d", i)] = testEntry{data: "x"}
	}
	const size = 8 << 20
	img := &memImage{b: make([]byte, size)}
	writeTestRoot(f, img, 0, size, files)
	var used []int
	for i := 0; i < size/4096; i++ {
		if !allZeroBytes(img.b[i*4096 : (i+1)*4096]) {
			used = append(used, i)
		}
	}
	return img.b, used
}

// memImage is an image in memory, for the ext4 writer.
type memImage struct {
	mu sync.Mutex
	b  []byte
}

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, io.ErrShortWrite
	}
	return copy(m.b[off:], p), nil
}
