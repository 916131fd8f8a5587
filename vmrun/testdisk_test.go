package vmrun

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/exporter/ext4"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// Disks for the direct boot's tests, laid out as c2vm lays out its own: a
// GPT whose partition 1 is a 1 MiB BIOS boot partition with grub.cfg in
// its last 64 KiB, and partition 2 an ext4 root written by c2vm's writer.

const (
	testRootUUID  = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9"
	typeLinuxRoot = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	testRootStart = 4 << 20
	testRootSize  = 96 << 20
)

// testEntry is a file of a test root: a directory (dir), a symlink (link),
// or a regular file of data, or of size bytes that are all a hole.
type testEntry struct {
	dir  bool
	link string
	data string
	size int64
}

// appGrubCfg is an app disk's grub.cfg as exporter/grub.go writes it (its
// lines that matter here), with args as the linux line's words.
func appGrubCfg(args string) string {
	return `search --no-floppy --fs-uuid --set=root '` + testRootUUID + `'
set c2vm_cmdline=
set c2vm_menu=
if [ -f '/etc/c2vm/boot.env' ]; then
	load_env --skip-sig --file '/etc/c2vm/boot.env' c2vm_cmdline c2vm_menu
fi
function c2vm_pick {
	set c2vm_k='/.c2vm/vmlinuz'
	set c2vm_i='/.c2vm/initrd.img'
}
function c2vm_load {
	if c2vm_pick; then
		linux16 "$c2vm_k" ` + args + ` $c2vm_cmdline
		initrd16 "$c2vm_i"
	else
		[ -n "" ]
	fi
}
`
}

// systemGrubCfg is a system disk's, shortened to what identifies it.
func systemGrubCfg(args string) string {
	return strings.Replace(appGrubCfg(args), "function c2vm_pick {\n\tset c2vm_k='/.c2vm/vmlinuz'\n\tset c2vm_i='/.c2vm/initrd.img'\n}",
		"function c2vm_newest {\n}\nfunction c2vm_pick {\n\tif [ -f /vmlinuz -a -f /initrd.img ]; then\n\t\tset c2vm_k=/vmlinuz\n\tfi\n}", 1)
}

const testArgs = `'root=UUID=` + testRootUUID + `' 'rw' 'console=tty0' 'console=ttyS0,115200' 'quiet' 'panic=-1'`

// testDisk writes a raw disk with cfg as its grub.cfg and files in its
// root, and returns its path.
func testDisk(t testing.TB, cfg string, files map[string]testEntry) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "linux.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(testRootStart + testRootSize + 1<<20); err != nil {
		t.Fatal(err)
	}
	writeTestGPT(t, f)
	if len(cfg) >= grubCfgBytes {
		t.Fatal("grub.cfg too long")
	}
	if _, err := f.WriteAt(append([]byte(cfg), bytes.Repeat([]byte{'\n'}, grubCfgBytes-len(cfg))...), 1<<20+grubCfgOffset); err != nil {
		t.Fatal(err)
	}
	writeTestRoot(t, f, testRootStart, testRootSize, files)
	return disk
}

// writeTestGPT writes a protective MBR, a GPT header at LBA 1 and entries
// at LBA 2: BIOS boot at 1 MiB (1 MiB), the root at testRootStart.
func writeTestGPT(t testing.TB, f *os.File) {
	mbr := make([]byte, 512)
	mbr[446+4] = 0xEE
	mbr[510], mbr[511] = 0x55, 0xAA
	hdr := make([]byte, 512)
	copy(hdr, "EFI PART")
	binary.LittleEndian.PutUint64(hdr[72:], 2)
	binary.LittleEndian.PutUint32(hdr[80:], 128)
	binary.LittleEndian.PutUint32(hdr[84:], 128)
	entries := make([]byte, 128*128)
	for i, p := range []struct {
		typ         string
		first, last uint64
	}{{typeBIOSBoot, 2048, 4095}, {typeLinuxRoot, testRootStart / 512, (testRootStart+testRootSize)/512 - 1}} {
		e := entries[128*i:]
		copy(e, guidBytes(p.typ))
		binary.LittleEndian.PutUint64(e[32:], p.first)
		binary.LittleEndian.PutUint64(e[40:], p.last)
	}
	for off, b := range map[int64][]byte{0: mbr, 512: hdr, 1024: entries} {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

// writeTestRoot writes an ext4 root of size bytes at off in f, parents
// before children.
func writeTestRoot(t testing.TB, f io.WriterAt, off, size int64, files map[string]testEntry) {
	var uuid [16]byte
	copy(uuid[:], guidBytesPlain(t, testRootUUID))
	w, err := ext4.NewWriter(f, ext4.Params{Offset: off, Size: size, Inodes: 4096, UUID: uuid, Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]testEntry{}
	for p, e := range files {
		all[p] = e
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = testEntry{dir: true}
			}
		}
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := createTestEntry(w, p, all[p]); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func createTestEntry(w *ext4.Writer, p string, e testEntry) error {
	switch {
	case e.dir:
		return w.Create(p, &ext4.File{Mode: sIFDIR | 0o755}, nil)
	case e.link != "":
		return w.Create(p, &ext4.File{Mode: sIFLNK | 0o777, Linkname: e.link}, nil)
	case e.size > 0:
		return w.Create(p, &ext4.File{Mode: sIFREG | 0o644, Size: e.size, Data: []ext4.Segment{}}, bytes.NewReader(nil))
	}
	return w.Create(p, &ext4.File{Mode: sIFREG | 0o644, Size: int64(len(e.data))}, strings.NewReader(e.data))
}

// guidBytesPlain is a UUID's 16 bytes in text order, as ext4 keeps it.
func guidBytesPlain(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("UUID %q", s)
	}
	return b
}

// testBzImage is a bzImage header whose payload is vmlinux gzip'd.
func testBzImage(vmlinux []byte) []byte {
	z := ocitest.Gzip(vmlinux)
	k := make([]byte, 1024)
	k[0x1F1] = 1 // setup sectors: the payload's code starts at 1024
	copy(k[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(k[0x206:], 0x20F)
	binary.LittleEndian.PutUint32(k[0x22C:], 0x7FFFFFFF) // initrd_addr_max
	binary.LittleEndian.PutUint32(k[0x248:], 0)
	binary.LittleEndian.PutUint32(k[0x24C:], uint32(len(z)))
	return append(k, z...)
}

// testVmlinux is the smallest ELF kernel QEMU's PVH boot takes: one
// loaded segment and Xen's PVH entry note, or without it when pvh is
// false.
func testVmlinux(pvh bool) []byte {
	const phoff, phnum = 64, 2
	note := make([]byte, 12+4+4)
	binary.LittleEndian.PutUint32(note[0:], 4)
	binary.LittleEndian.PutUint32(note[4:], 4)
	typ := uint32(xenElfnotePhys32Entry)
	if !pvh {
		typ = 1
	}
	binary.LittleEndian.PutUint32(note[8:], typ)
	copy(note[12:], "Xen\x00")
	binary.LittleEndian.PutUint32(note[16:], 0x1000000)
	h := make([]byte, phoff+phnum*56)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2)  // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 62) // EM_X86_64
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint64(h[32:], phoff)
	binary.LittleEndian.PutUint16(h[52:], 64)
	binary.LittleEndian.PutUint16(h[54:], 56)
	binary.LittleEndian.PutUint16(h[56:], phnum)
	body := append(note, make([]byte, 64)...)
	off := uint64(len(h))
	for i, seg := range []struct{ typ, filesz, memsz uint64 }{{4, uint64(len(note)), uint64(len(note))}, {1, uint64(len(body)), 4096}} {
		p := h[phoff+56*i:]
		binary.LittleEndian.PutUint32(p[0:], uint32(seg.typ))
		binary.LittleEndian.PutUint64(p[8:], off)
		binary.LittleEndian.PutUint64(p[24:], 0x1000000)
		binary.LittleEndian.PutUint64(p[32:], seg.filesz)
		binary.LittleEndian.PutUint64(p[40:], seg.memsz)
	}
	return append(h, body...)
}

// testInitramfs is a newc archive laid out as an app initramfs: the module
// list, /init and two modules, one of them a DirectModule.
func testInitramfs() []byte {
	var b bytes.Buffer
	add := func(name string, mode uint32, data string) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name + "\x00")
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.WriteString(data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	const mods = "lib/modules/1/kernel/"
	add(".c2vm/modules.load", 0o100644, mods+"ahci.ko:\n"+mods+"virtio_blk.ko:\n")
	add("init", 0o100755, "#!init")
	add(mods+"ahci.ko", 0o100644, "AHCI")
	add(mods+"virtio_blk.ko", 0o100644, "VIRTIO")
	add("TRAILER!!!", 0, "")
	return b.Bytes()
}
