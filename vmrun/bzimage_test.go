package vmrun

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCheckBzImage(t *testing.T) {
	good := testBzImage(testVmlinux(true))
	if _, err := checkBzImage(good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(k []byte)) []byte {
		k := append([]byte(nil), good...)
		f(k)
		return k
	}
	for name, k := range map[string][]byte{
		"short":           good[:0x200],
		"no HdrS":         edit(func(k []byte) { k[0x202] = 'X' }),
		"protocol 2.07":   edit(func(k []byte) { binary.LittleEndian.PutUint16(k[0x206:], 0x207) }),
		"payload outside": edit(func(k []byte) { binary.LittleEndian.PutUint32(k[0x24C:], 1<<30) }),
		"offset outside":  edit(func(k []byte) { binary.LittleEndian.PutUint32(k[0x248:], 0xFFFFFFF0) }),
	} {
		if _, err := checkBzImage(k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestWriteVmlinux decompresses payloads: a PVH kernel is taken; an ELF
// without the PVH note, not an ELF at all, or a compression not read here
// leaves the bzImage to boot as it is; a broken stream is an error.
func TestWriteVmlinux(t *testing.T) {
	run := func(payload []byte) (bool, error, string) {
		out, err := os.Create(filepath.Join(t.TempDir(), "vmlinux"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		ok, err := writeVmlinux(context.Background(), payload, out)
		b, _ := os.ReadFile(out.Name())
		return ok, err, string(b)
	}
	payload := func(vmlinux []byte) []byte {
		p, err := checkBzImage(testBzImage(vmlinux))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if ok, err, got := run(payload(testVmlinux(true))); !ok || err != nil || got != string(testVmlinux(true)) {
		t.Errorf("PVH kernel: %v, %v", ok, err)
	}
	for name, payload := range map[string][]byte{
		"no PVH note": payload(testVmlinux(false)),
		"not an ELF":  payload([]byte("plain text, not a kernel")),
		"lz4":         {0x02, 0x21, 0x4C, 0x18, 0, 0},
	} {
		if ok, err, _ := run(payload); ok || err != nil {
			t.Errorf("%s: %v, %v; want the bzImage as it is", name, ok, err)
		}
	}
	if ok, err, _ := run([]byte{0x1F, 0x8B, 8, 0, 0, 0}); ok || err == nil || !strings.Contains(err.Error(), "decompressing the kernel") {
		t.Errorf("bad gzip: %v, %v", ok, err)
	}
	// zstd as Debian 13's kernel has it: the size after the frame.
	zw, _ := zstd.NewWriter(nil)
	zs := zw.EncodeAll(testVmlinux(true), nil)
	if ok, err, got := run(append(zs, 1, 2, 3, 4)); !ok || err != nil || got != string(testVmlinux(true)) {
		t.Errorf("zstd with the size after it: %v, %v", ok, err)
	}
	needTool(t, "xz")
	var xz bytes.Buffer
	cmd := exec.Command("xz", "--format=xz", "--check=crc32", "--x86", "--lzma2")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(testVmlinux(true)), &xz
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// The kernel's build appends the decompressed size after the stream.
	if ok, err, got := run(append(xz.Bytes(), 1, 2, 3, 4)); !ok || err != nil || got != string(testVmlinux(true)) {
		t.Errorf("xz with the x86 filter: %v, %v", ok, err)
	}
}

// TestCheckPVHNoteBudget: PT_NOTE segments may all point at the same 64
// KiB, so the notes read are bounded per kernel, not per segment. A PVH
// note behind more than maxNoteBytes of other notes is not looked for; the
// same note behind a few is found.
func TestCheckPVHNoteBudget(t *testing.T) {
	for _, c := range []struct {
		empty int
		found bool
	}{{2, true}, {maxNoteBytes/maxNotes + 1, false}} {
		f, err := os.Create(filepath.Join(t.TempDir(), "vmlinux"))
		if err != nil {
			t.Fatal(err)
		}
		f.Write(notesELF(c.empty))
		if err := checkPVH(f); (err == nil) != c.found {
			t.Errorf("PVH note behind %d segments of %d KiB of notes: %v", c.empty, maxNotes>>10, err)
		}
		f.Close()
	}
}

// notesELF is a kernel ELF with n PT_NOTE segments over the same 64 KiB of
// other notes, then one over a PVH note, and a loaded segment.
func notesELF(n int) []byte {
	const phoff = 64
	phnum := n + 2
	le := binary.LittleEndian
	h := make([]byte, phoff+56*phnum)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], 2)  // ET_EXEC
	le.PutUint16(h[18:], 62) // EM_X86_64
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[32:], phoff)
	le.PutUint16(h[52:], 64)
	le.PutUint16(h[54:], 56)
	le.PutUint16(h[56:], uint16(phnum))
	others := make([]byte, maxNotes)
	for o := 0; o+12 <= len(others); o += 12 {
		le.PutUint32(others[o+8:], 1) // empty notes of another type
	}
	pvh := make([]byte, 20)
	le.PutUint32(pvh[0:], 4)
	le.PutUint32(pvh[4:], 4)
	le.PutUint32(pvh[8:], xenElfnotePhys32Entry)
	copy(pvh[12:], "Xen\x00")
	othersAt, pvhAt := uint64(len(h)), uint64(len(h)+len(others))
	seg := func(i int, typ uint32, off, size uint64) {
		p := h[phoff+56*i:]
		le.PutUint32(p[0:], typ)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[24:], 0x1000000)
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
	}
	for i := range n {
		seg(i, 4, othersAt, uint64(len(others)))
	}
	seg(n, 4, pvhAt, uint64(len(pvh)))
	seg(n+1, 1, pvhAt, uint64(len(pvh)))
	return append(append(h, others...), pvh...)
}
