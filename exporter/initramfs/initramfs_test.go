package initramfs

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const ver = "6.1.0-9-amd64"

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func xzBytes(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// fakeKernel lays out a kernel as an installed Debian one: depmod's index,
// one module xz-compressed (as trixie ships them), names with - and _.
func fakeKernel(t *testing.T, config string) string {
	dir := t.TempDir()
	m := filepath.Join(dir, "lib/modules", ver)
	write(t, filepath.Join(dir, "boot/vmlinuz-"+ver), []byte("kernel"))
	write(t, filepath.Join(dir, "boot/config-"+ver), []byte(config))
	deps := map[string]string{
		"kernel/fs/ext4/ext4.ko":                 "kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko",
		"kernel/fs/jbd2/jbd2.ko":                 "",
		"kernel/lib/crc16.ko":                    "",
		"kernel/crypto/crc32c_generic.ko":        "",
		"kernel/arch/x86/crypto/crc32c-intel.ko": "",
		"kernel/drivers/virtio/virtio_pci.ko":    "kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_ring.ko":   "",
		"kernel/drivers/virtio/virtio.ko":        "",
		"kernel/drivers/block/xen-blkfront.ko":   "",
		"kernel/drivers/net/virtio_net.ko.xz":    "kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/unused.ko":               "",
	}
	var dep strings.Builder
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range deps {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&dep, "%s: %s\n", p, deps[p])
		content := []byte("module " + p)
		if strings.HasSuffix(p, ".xz") {
			content = xzBytes(t, []byte("module "+strings.TrimSuffix(p, ".xz")))
		}
		write(t, filepath.Join(m, p), content)
	}
	write(t, filepath.Join(m, "modules.dep"), []byte(dep.String()))
	write(t, filepath.Join(m, "modules.builtin"), []byte("kernel/drivers/input/evdev.ko\n"))
	write(t, filepath.Join(m, "modules.softdep"), []byte("# comment\nsoftdep ext4 pre: crypto-crc32c\nsoftdep cifs gcm\n"))
	write(t, filepath.Join(m, "modules.alias"), []byte("alias crypto-crc32c crc32c_intel\nalias crc32c crc32c_intel\n"+
		"alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\nalias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"))
	return dir
}

func TestVersionLess(t *testing.T) {
	sorted := []string{"5.10.0-9-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-10-cloud-amd64", "6.9.0", "6.10.0~rc1", "6.10.0", "6.10.0-1"}
	for i := range sorted {
		for j := range sorted {
			if got := VersionLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("VersionLess(%q, %q) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

func TestFindKernelNewestAndErrors(t *testing.T) {
	dir := fakeKernel(t, "")
	write(t, filepath.Join(dir, "boot/vmlinuz-6.10.0-1-amd64"), []byte("k"))
	write(t, filepath.Join(dir, "usr/lib/modules/6.10.0-1-amd64/modules.dep"), nil)
	write(t, filepath.Join(dir, "boot/vmlinuz-7.0.0-1-amd64"), []byte("no modules")) // incomplete: ignored
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "6.10.0-1-amd64" || k.ModulesDir != "usr/lib/modules/6.10.0-1-amd64" || k.Image != "boot/vmlinuz-6.10.0-1-amd64" || k.Config != "" {
		t.Errorf("newest kernel: %+v", k)
	}
	f, err := k.OpenImage()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	var ue *usererr.Error
	_, err = FindKernel(t.TempDir())
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no boot/vmlinuz-VERSION") ||
		!strings.Contains(ue.Fix, "apt-get install linux-image-amd64") || !strings.Contains(ue.Fix, "--kernel-dir") {
		t.Errorf("empty dir: %v", err)
	}
	only := t.TempDir()
	write(t, filepath.Join(only, "boot/vmlinuz-6.1.0-9-amd64"), []byte("k"))
	if _, err = FindKernel(only); err == nil || !strings.Contains(err.Error(), "6.1.0-9-amd64") || !strings.Contains(err.Error(), "no modules") {
		t.Errorf("kernel without modules: %v", err)
	}
	if _, err = FindKernel(filepath.Join(only, "nope")); err == nil || !strings.Contains(err.Error(), "--kernel-dir") {
		t.Errorf("missing dir: %v", err)
	}
}

func TestFindKernelSymlinkEscape(t *testing.T) {
	dir := fakeKernel(t, "")
	outside := t.TempDir()
	write(t, filepath.Join(outside, "vmlinuz-9.9.9"), []byte("host file"))
	os.Symlink(filepath.Join(outside, "vmlinuz-9.9.9"), filepath.Join(dir, "boot/vmlinuz-9.9.9"))
	os.MkdirAll(filepath.Join(dir, "lib/modules/9.9.9/kernel"), 0o755)
	k, err := FindKernel(dir)
	if err != nil || k.Version != ver {
		t.Fatalf("an image symlinked out of the kernel dir was taken: %+v %v", k, err)
	}
}

func TestPlanClosureOrder(t *testing.T) {
	dir := fakeKernel(t, "")
	r, _ := os.OpenRoot(dir)
	defer r.Close()
	ix, err := loadIndex(r, "lib/modules/"+ver)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ix.plan([]string{"virtio-pci", "virtio_net", "xen_blkfront", "evdev", "crc32c", "nvme", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_pci", "virtio_net", "xen_blkfront", "crc32c_generic", "crc32c_intel", "crc16", "jbd2", "ext4"}
	if !slices.Equal(p.order, want) {
		t.Errorf("order %v, want %v", p.order, want)
	}
	if !slices.Equal(p.missing, []string{"nvme"}) {
		t.Errorf("missing %v", p.missing)
	}
	pos := func(n string) int { return slices.Index(p.order, n) }
	if pos("crc32c_generic") > pos("ext4") || pos("jbd2") > pos("ext4") {
		t.Error("ext4 before its softdep or dependency")
	}
}

// TestBuildReproducibleContent builds twice, compares the bytes and reads
// the archive back.
func TestBuildReproducibleContent(t *testing.T) {
	dir := fakeKernel(t, "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")
	init := filepath.Join(t.TempDir(), "c2vm")
	write(t, init, []byte("\x7fELF static init"))
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	k.Logf = func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	var one, two bytes.Buffer
	if err := Build(&one, k, init, []string{"virtio_net", "nvme"}); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(init, time.Now(), time.Now().Add(time.Hour))
	k.Logf = nil
	if err := Build(&two, k, init, []string{"virtio_net", "nvme"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("two builds differ")
	}
	if !bytes.HasPrefix(one.Bytes(), []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatal("not zstd although the config has CONFIG_RD_ZSTD=y")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "nvme") {
		t.Errorf("notes %q", notes)
	}
	files := readCPIO(t, unzstd(t, one.Bytes()))
	m := "lib/modules/" + ver + "/kernel/"
	wantNames := []string{".c2vm", ".c2vm/modules.load", "dev", "dev/console", "init", "lib", "lib/modules", "lib/modules/" + ver, "lib/modules/" + ver + "/kernel"}
	for _, n := range wantNames {
		if _, ok := files[n]; !ok {
			t.Errorf("no %s in the archive", n)
		}
	}
	if f := files["init"]; f.data != "\x7fELF static init" || f.mode != 0o100755 || f.uid != 0 || f.mtime != 0 {
		t.Errorf("init: %+v", f)
	}
	if f := files["dev/console"]; f.mode != 0o020600 || f.rdev != [2]int{5, 1} {
		t.Errorf("dev/console: %+v", f)
	}
	if f := files[m+"drivers/net/virtio_net.ko"]; f.data != "module kernel/drivers/net/virtio_net.ko" {
		t.Errorf("virtio_net not decompressed: %+v", f)
	}
	load := files[".c2vm/modules.load"].data
	wantLoad := m + "drivers/virtio/virtio.ko:\n" + m + "drivers/virtio/virtio_ring.ko:\n" +
		m + "drivers/net/virtio_net.ko: " + m + "drivers/virtio/virtio_ring.ko " + m + "drivers/virtio/virtio.ko\n" +
		m + "crypto/crc32c_generic.ko:\n" + m + "arch/x86/crypto/crc32c-intel.ko:\n" + m + "lib/crc16.ko:\n" + m + "fs/jbd2/jbd2.ko:\n" +
		m + "fs/ext4/ext4.ko: " + m + "fs/jbd2/jbd2.ko " + m + "lib/crc16.ko\n"
	if load != wantLoad {
		t.Errorf("load order:\n%s\nwant:\n%s", load, wantLoad)
	}
	if _, ok := files[m+"drivers/unused.ko"]; ok {
		t.Error("a module nobody asked for is in the archive")
	}
}

func TestBuildGzipAndNoExt4(t *testing.T) {
	dir := fakeKernel(t, "CONFIG_RD_GZIP=y\n# CONFIG_RD_ZSTD is not set\n")
	init := filepath.Join(t.TempDir(), "init")
	write(t, init, []byte("x"))
	k, _ := FindKernel(dir)
	var b bytes.Buffer
	if err := Build(&b, k, init, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := gzip.NewReader(&b); err != nil {
		t.Errorf("without CONFIG_RD_ZSTD: not gzip: %v", err)
	}
	os.Remove(filepath.Join(dir, "lib/modules", ver, "kernel/fs/ext4/ext4.ko"))
	dep := filepath.Join(dir, "lib/modules", ver, "modules.dep")
	data, _ := os.ReadFile(dep)
	os.WriteFile(dep, []byte(strings.ReplaceAll(string(data), "kernel/fs/ext4/ext4.ko:", "kernel/fs/ext2/ext2.ko:")), 0o644)
	if err := Build(io.Discard, k, init, nil); err == nil || !strings.Contains(err.Error(), "no ext4") {
		t.Errorf("kernel without ext4: %v", err)
	}
}

func TestBuildRefusesEscapes(t *testing.T) {
	dir := fakeKernel(t, "")
	init := filepath.Join(t.TempDir(), "init")
	write(t, init, []byte("x"))
	k, _ := FindKernel(dir)
	m := filepath.Join(dir, "lib/modules", ver)
	// A module symlinked to a host file.
	secret := filepath.Join(t.TempDir(), "secret")
	write(t, secret, []byte("host secret"))
	os.Remove(filepath.Join(m, "kernel/lib/crc16.ko"))
	os.Symlink(secret, filepath.Join(m, "kernel/lib/crc16.ko"))
	if err := Build(io.Discard, k, init, nil); err == nil {
		t.Error("a module symlinked out of the kernel dir was read")
	}
	// A path climbing out in modules.dep.
	dep := filepath.Join(m, "modules.dep")
	data, _ := os.ReadFile(dep)
	os.WriteFile(dep, append(data, "../../../../etc/passwd.ko:\n"...), 0o644)
	if err := Build(io.Discard, k, init, nil); err == nil || !strings.Contains(err.Error(), "bad module path") {
		t.Errorf("modules.dep with ..: %v", err)
	}
}

// TestBuildUnpackedKernel is a kernel from dpkg -x: no modules.dep, no
// modules.alias; dependencies, softdeps and aliases come from .modinfo.
func TestBuildUnpackedKernel(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "lib/modules", ver)
	write(t, filepath.Join(dir, "boot/vmlinuz-"+ver), []byte("k"))
	write(t, filepath.Join(m, "modules.builtin"), []byte("kernel/drivers/input/evdev.ko\n"))
	write(t, filepath.Join(m, "kernel/fs/ext4/ext4.ko.xz"), xzBytes(t, elfWithModinfo("name=ext4", "depends=jbd2,crc16", "softdep=pre: crc32c")))
	write(t, filepath.Join(m, "kernel/fs/jbd2/jbd2.ko"), elfWithModinfo("name=jbd2", "depends="))
	write(t, filepath.Join(m, "kernel/lib/crc16.ko"), elfWithModinfo("name=crc16", "depends="))
	write(t, filepath.Join(m, "kernel/crypto/crc32c_generic.ko"), elfWithModinfo("alias=crypto-crc32c", "alias=crc32c", "depends="))
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	init := filepath.Join(t.TempDir(), "init")
	write(t, init, []byte("x"))
	if err := Build(&b, k, init, []string{"evdev"}); err != nil {
		t.Fatal(err)
	}
	g, err := gzip.NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(g)
	load := readCPIO(t, raw)[".c2vm/modules.load"].data
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(load), "\n") {
		p, _, _ := strings.Cut(l, ":")
		names = append(names, filepath.Base(p))
	}
	if want := []string{"crc32c_generic.ko", "crc16.ko", "jbd2.ko", "ext4.ko"}; !slices.Equal(names, want) {
		t.Errorf("load order %v, want %v\n%s", names, want, load)
	}
}

// elfWithModinfo is a minimal ELF64 relocatable object with a .modinfo
// section, which is all the index reads of a module.
func elfWithModinfo(kv ...string) []byte {
	info := []byte(strings.Join(kv, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 1)  // ET_REL
	le.PutUint16(hdr[18:], 62) // x86-64
	le.PutUint32(hdr[20:], 1)
	shoff := 64 + len(info) + len(shstr)
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], 64) // ehsize
	le.PutUint16(hdr[58:], 64) // shentsize
	le.PutUint16(hdr[60:], 3)  // shnum
	le.PutUint16(hdr[62:], 2)  // shstrndx
	sh := func(name, typ uint32, off, size int) []byte {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		return s
	}
	out := append(append(append(hdr, info...), shstr...), make([]byte, 64)...)
	out = append(out, sh(1, 1, 64, len(info))...)             // .modinfo, PROGBITS
	out = append(out, sh(10, 3, 64+len(info), len(shstr))...) // .shstrtab, STRTAB
	return out
}

func unzstd(t *testing.T, b []byte) []byte {
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type cpioFile struct {
	mode, uid, mtime int
	rdev             [2]int
	data             string
}

// readCPIO parses newc, checking the order (parents first, sorted) and the
// 4-byte alignment as it goes.
func readCPIO(t *testing.T, b []byte) map[string]cpioFile {
	t.Helper()
	files := map[string]cpioFile{}
	prev := ""
	for off := 0; ; {
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		size, namesize := field(6), field(11)
		f := cpioFile{mode: field(1), uid: field(2), mtime: field(5), rdev: [2]int{field(9), field(10)}}
		name := string(b[off+110 : off+110+namesize-1])
		off = (off + 110 + namesize + 3) &^ 3
		f.data = string(b[off : off+size])
		off = (off + size + 3) &^ 3
		if name == "TRAILER!!!" {
			return files
		}
		if name <= prev {
			t.Errorf("%s after %s: not sorted", name, prev)
		}
		prev = name
		files[name] = f
	}
}

// TestBuildFixtureKernel builds the real thing for the bookworm kernel of
// the boot tests' fixture (C2VM_FIXTURE), with DefaultModules.
func TestBuildFixtureKernel(t *testing.T) {
	k := fixtureKernel(t)
	k.Logf = t.Logf
	self, _ := os.Executable()
	var b bytes.Buffer
	start := time.Now()
	if err := Build(&b, k, self, DefaultModules); err != nil {
		t.Fatal(err)
	}
	files := readCPIO(t, unzstd(t, b.Bytes()))
	t.Logf("kernel %s: initramfs %d KiB (init %d KiB) in %s", k.Version, b.Len()>>10, len(files["init"].data)>>10, time.Since(start).Round(time.Millisecond))
	load := files[".c2vm/modules.load"].data
	for _, m := range []string{"/ext4.ko:", "/virtio_blk.ko:", "/virtio_net.ko:", "/button.ko:", "/evdev.ko:", "/crc32c_generic.ko:", "/hv_storvsc.ko:"} {
		if !strings.Contains(load, m) {
			t.Errorf("%s not in the load order:\n%s", m, load)
		}
	}
}

// fixtureKernel is the kernel of the boot tests' fixture (C2VM_FIXTURE);
// the test is skipped without it, and with -short.
func fixtureKernel(t *testing.T) *Kernel {
	dir := os.Getenv("C2VM_FIXTURE")
	if dir == "" || testing.Short() {
		t.Skip("needs C2VM_FIXTURE (hack/fixture-tree) and no -short")
	}
	k, err := FindKernel(dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
