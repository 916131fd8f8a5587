package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// builtApp is an app initramfs Build made from the fake kernel, with init
// as /init.
func builtApp(t *testing.T, config string, init []byte, modules []string) []byte {
	t.Helper()
	dir := fakeKernel(t, config)
	p := filepath.Join(t.TempDir(), "init")
	write(t, p, init)
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Build(&b, k, p, modules); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSlim keeps the modules asked for with their dependencies and the
// load order that says so, and everything else Build wrote, from zstd and
// gzip archives alike.
func TestSlim(t *testing.T) {
	for _, config := range []string{"CONFIG_RD_ZSTD=y\n", "CONFIG_RD_GZIP=y\n"} {
		in := builtApp(t, config, []byte("init"), []string{"virtio_pci", "virtio_net", "xen-blkfront"})
		var out bytes.Buffer
		if err := Slim(bytes.NewReader(in), &out, []string{"virtio-net", "ext4"}); err != nil {
			t.Fatal(err)
		}
		files := readCPIO(t, out.Bytes())
		m := "lib/modules/" + ver + "/kernel/"
		wantLoad := m + "drivers/virtio/virtio.ko:\n" + m + "drivers/virtio/virtio_ring.ko:\n" +
			m + "drivers/net/virtio_net.ko: " + m + "drivers/virtio/virtio_ring.ko " + m + "drivers/virtio/virtio.ko\n" +
			m + "lib/crc16.ko:\n" + m + "fs/jbd2/jbd2.ko:\n" +
			m + "fs/ext4/ext4.ko: " + m + "fs/jbd2/jbd2.ko " + m + "lib/crc16.ko\n"
		if got := files[".c2vm/modules.load"].data; got != wantLoad {
			t.Errorf("%s: load order:\n%s\nwant:\n%s", config, got, wantLoad)
		}
		for _, gone := range []string{"drivers/virtio/virtio_pci.ko", "drivers/block/xen-blkfront.ko", "crypto/crc32c_generic.ko"} {
			if _, ok := files[m+gone]; ok {
				t.Errorf("%s: %s kept", config, gone)
			}
		}
		if f := files[m+"drivers/net/virtio_net.ko"]; f.data != "module kernel/drivers/net/virtio_net.ko" {
			t.Errorf("%s: virtio_net: %+v", config, f)
		}
		if files["init"].data != "init" || files["dev/console"].rdev != [2]int{5, 1} || files["init"].mode != 0o100755 {
			t.Errorf("%s: init %+v, console %+v", config, files["init"], files["dev/console"])
		}
	}
}

// TestSlimRefuses: archives that are not an app initramfs laid out as
// Build lays it out, or whose headers are broken, are refused.
func TestSlimRefuses(t *testing.T) {
	entry := func(name, data string) string {
		var b bytes.Buffer
		writeHeader(&b, 1, modeFile|0o644, 1, len(data), 0, 0, name)
		writePadded(&b, []byte(data))
		return b.String()
	}
	trailer := entry("TRAILER!!!", "")
	for name, c := range map[string]struct {
		archive string
		notApp  bool
	}{
		"module before the list": {entry("lib/modules/1/a.ko", "a") + entry(".c2vm/modules.load", "") + trailer, true},
		"no module list":         {entry("init", "x") + trailer, true},
		"not an archive":         {"hello, world", true},
		"not newc":               {"070707" + strings.Repeat("0", 200), true},
		"truncated":              {entry(".c2vm/modules.load", "x")[:120], false},
		"name escapes":           {entry("../etc/passwd", "x") + trailer, false},
		"absolute name":          {entry("/init", "x") + trailer, false},
		"bad hex":                {strings.Replace(entry("init", "x"), "070701", "070701ZZ", 1) + trailer, false},
		"list too long":          {entry(".c2vm/modules.load", strings.Repeat("a", maxListBytes+1)) + trailer, false},
		"escape in a name":       {entry(".c2vm/modules.load", "") + entry("x\x1b]2;owned\x07", "x") + trailer, false},
	} {
		err := Slim(strings.NewReader(c.archive), &bytes.Buffer{}, DirectModules)
		if err == nil || errors.Is(err, ErrNotApp) != c.notApp {
			t.Errorf("%s: %v (not app: want %v)", name, err, c.notApp)
		}
	}
}

// TestSlimBounds: what a small compressed archive declares does not
// become an unbounded file or CPU time: a slim archive stops at
// maxSlimOutput and an archive at maxSlimEntries entries, each with an
// error; no error prints a name's raw escape byte.
func TestSlimBounds(t *testing.T) {
	list := func(w io.Writer) {
		writeHeader(w, 1, modeFile|0o644, 1, 0, 0, 0, ".c2vm/modules.load")
	}
	zeros := zstdArchive(t, func(w io.Writer) {
		list(w)
		zero := make([]byte, 1<<20)
		for i := range 12 {
			writeHeader(w, uint32(i+2), modeFile|0o644, 1, 50<<20, 0, 0, fmt.Sprint("f", i))
			for range 50 {
				w.Write(zero)
			}
		}
	})
	var out countWriter
	if err := Slim(bytes.NewReader(zeros), &out, DirectModules); err == nil || out > maxSlimOutput {
		t.Errorf("600 MiB of zeros in %d KiB: %v, %d bytes written", len(zeros)>>10, err, out)
	}
	many := zstdArchive(t, func(w io.Writer) {
		list(w)
		for range maxSlimEntries + 10 {
			writeHeader(w, 2, modeFile|0o644, 1, 0, 0, 0, "ab")
		}
	})
	if err := Slim(bytes.NewReader(many), new(countWriter), DirectModules); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Errorf("%d entries: %v", maxSlimEntries+10, err)
	}
}

// zstdArchive compresses what write writes.
func zstdArchive(t *testing.T, write func(io.Writer)) []byte {
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	write(zw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// TestStripInit cuts a static executable after its last segment and
// keeps it one: a small one with its section headers at the end, and the
// test binary itself when it is static (Go puts them at the start).
func TestStripInit(t *testing.T) {
	bins := [][]byte{staticELF()}
	if self, err := os.ReadFile(os.Args[0]); err == nil {
		if f, err := elf.NewFile(bytes.NewReader(self)); err == nil && f.Type == elf.ET_EXEC && !hasInterp(f) {
			bins = append(bins, self)
		}
	}
	for _, b := range bins {
		s := stripInit(b)
		f, err := elf.NewFile(bytes.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) >= len(b) || len(f.Sections) != 0 {
			t.Errorf("%d bytes of %d, %d sections", len(s), len(b), len(f.Sections))
		}
		for _, p := range f.Progs {
			if p.Off+p.Filesz > uint64(len(s)) {
				t.Errorf("segment %+v cut", p.ProgHeader)
			}
		}
	}
	for _, notExec := range [][]byte{[]byte("#!/bin/sh\n"), staticELF()[:64]} {
		if got := stripInit(notExec); !bytes.Equal(got, notExec) {
			t.Errorf("%q changed", fmt.Sprintf("%.8s", notExec))
		}
	}
}

// staticELF is an x86-64 executable: one loaded segment, then 4 KiB of
// what the loader never maps and two section headers.
func staticELF() []byte {
	b := make([]byte, 0x100+0x1000+2*64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(b[18:], uint16(elf.EM_X86_64))
	binary.LittleEndian.PutUint32(b[20:], 1)
	binary.LittleEndian.PutUint64(b[0x20:], 64)     // phoff
	binary.LittleEndian.PutUint64(b[0x28:], 0x1100) // shoff
	binary.LittleEndian.PutUint16(b[0x34:], 64)     // ehsize
	binary.LittleEndian.PutUint16(b[0x36:], 56)     // phentsize
	binary.LittleEndian.PutUint16(b[0x38:], 1)      // phnum
	binary.LittleEndian.PutUint16(b[0x3A:], 64)     // shentsize
	binary.LittleEndian.PutUint16(b[0x3C:], 2)      // shnum
	ph := b[64:]
	binary.LittleEndian.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	binary.LittleEndian.PutUint64(ph[8:], 0)
	binary.LittleEndian.PutUint64(ph[16:], 0x400000)
	binary.LittleEndian.PutUint64(ph[32:], 0x100)
	binary.LittleEndian.PutUint64(ph[40:], 0x100)
	sh := b[0x1100+64:]
	binary.LittleEndian.PutUint32(sh[4:], uint32(elf.SHT_PROGBITS))
	binary.LittleEndian.PutUint64(sh[24:], 0x100) // offset: the unmapped part
	binary.LittleEndian.PutUint64(sh[32:], 0x1000)
	return b
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

func FuzzSlim(f *testing.F) {
	var b bytes.Buffer
	writeHeader(&b, 1, modeFile|0o644, 1, 4, 0, 0, ".c2vm/modules.load")
	writePadded(&b, []byte("a.ko"))
	writeHeader(&b, 0, 0, 1, 0, 0, 0, "TRAILER!!!")
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, archive []byte) {
		Slim(bytes.NewReader(archive), &bytes.Buffer{}, DirectModules)
	})
}

// TestSlimFixtureKernel slims the real initramfs of the boot tests'
// fixture kernel (C2VM_FIXTURE): every DirectModule is there, with its
// dependencies, and no other hypervisor's driver.
func TestSlimFixtureKernel(t *testing.T) {
	k := fixtureKernel(t)
	self, _ := os.Executable()
	var full, slim bytes.Buffer
	if err := Build(&full, k, self, DefaultModules); err != nil {
		t.Fatal(err)
	}
	if err := Slim(bytes.NewReader(full.Bytes()), &slim, DirectModules); err != nil {
		t.Fatal(err)
	}
	files := readCPIO(t, slim.Bytes())
	load := files[".c2vm/modules.load"].data
	t.Logf("load order:\n%s", load)
	for _, l := range strings.Split(strings.TrimSpace(load), "\n") {
		mod, deps, _ := strings.Cut(l, ":")
		for _, f := range append(strings.Fields(deps), mod) {
			if _, ok := files[f]; !ok {
				t.Errorf("%s is in the load order but not in the archive", f)
			}
		}
	}
	for _, m := range DirectModules {
		if builtIn(t, k, m) {
			continue
		}
		if !strings.Contains(strings.ReplaceAll(load, "-", "_"), "/"+m+".ko:") {
			t.Errorf("%s not in the load order:\n%s", m, load)
		}
	}
	for _, m := range []string{"ahci", "hv_vmbus", "e1000", "nvme", "mptspi"} {
		if strings.Contains(load, "/"+m+".ko:") {
			t.Errorf("%s kept:\n%s", m, load)
		}
	}
	t.Logf("initramfs %d KiB compressed, %d KiB slim", full.Len()>>10, slim.Len()>>10)
}

// builtIn tells whether k has module m built in (modules.builtin).
func builtIn(t *testing.T, k *Kernel, m string) bool {
	b, err := os.ReadFile(filepath.Join(k.Dir, k.ModulesDir, "modules.builtin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(b)) {
		if nameOfPath(l) == modName(m) {
			return true
		}
	}
	return false
}

// A module list may name only direct dependencies (Debian 13's kernel):
// a kept module keeps its dependencies' dependencies too.
func TestKeepModulesClosure(t *testing.T) {
	list := "m/failover.ko:\nm/net_failover.ko: m/failover.ko\nm/virtio_net.ko: m/net_failover.ko\nm/ahci.ko:\n"
	got, kept := keepModules(list, []string{"virtio_net"})
	if want := "m/failover.ko:\nm/net_failover.ko: m/failover.ko\nm/virtio_net.ko: m/net_failover.ko\n"; got != want || len(kept) != 3 {
		t.Errorf("kept %v:\n%s", kept, got)
	}
}
