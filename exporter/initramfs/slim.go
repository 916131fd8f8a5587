package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/appinit"
	"github.com/c2vm/c2vm/internal/bounded"
	"github.com/klauspost/compress/zstd"
)

// DirectModules are what an app VM that c2vm run starts directly needs
// (its kernel booted by QEMU, on a q35 machine whose only devices are
// virtio ones): the virtio PCI transport, disk, NIC and entropy source,
// ext4 and its checksum, the ACPI power button and its evdev interface.
// The disk's own initramfs keeps DefaultModules, for every hypervisor;
// loading those under emulation took about 2.9 s of a 7 s boot, most of
// it probing controllers the machine does not have.
var DirectModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng",
	"ext4", "crc32c_generic", "crc32c_intel",
	"button", "evdev",
}

// Bounds on the archive Slim reads: its decompressed bytes, and the parts
// held in memory (the module list and the init, stripped in memory).
const (
	maxSlimInput   = 1 << 30
	maxSlimOutput  = 512 << 20 // Build's archives are 20 to 40 MiB
	maxSlimEntries = 100_000   // Build's hold a few hundred
	maxListBytes   = 1 << 20
	maxStripInit   = 256 << 20
	maxNameBytes   = 4096
)

// ErrNotApp is an archive Slim does not take for one Build made.
var ErrNotApp = errors.New("not an initramfs c2vm built for app mode")

// Slim copies an app initramfs that Build made (gzip, zstd or plain) from
// r to w, uncompressed, keeping only the modules named in keep with their
// dependencies, and the module list saying so. The init loses what its
// loader never maps (stripInit). Uncompressed, the kernel only copies the
// archive: under emulation, decompressing it costs more than QEMU loading
// the larger file.
//
// The archive is input from a disk: every header is checked, every size
// bounded, and an archive not laid out as Build lays it out (the module
// list before any module) is ErrNotApp.
func Slim(r io.Reader, w io.Writer, keep []string) error {
	in, closeIn, err := decompressed(r)
	if err != nil {
		return err
	}
	defer closeIn()
	cr := &cpioReader{r: bufio.NewReaderSize(&bounded.Reader{R: in, Left: maxSlimInput, Err: fmt.Errorf("more than %d MiB decompressed", maxSlimInput>>20)}, 1<<20)}
	bw := bufio.NewWriterSize(&bounded.Writer{W: w, Left: maxSlimOutput, Err: fmt.Errorf("a slim initramfs of more than %d MiB", maxSlimOutput>>20)}, 1<<20)
	var kept map[string]bool // module paths to keep, once the list is read
	for n := 0; ; n++ {
		if n == maxSlimEntries {
			return fmt.Errorf("more than %d cpio entries", maxSlimEntries)
		}
		h, err := cr.next()
		if err != nil {
			return err
		}
		if h.name == "TRAILER!!!" {
			break
		}
		var data []byte
		switch {
		case "/"+h.name == appinit.ModuleListPath:
			if data, err = cr.readAll(h, maxListBytes); err != nil {
				return err
			}
			var list string
			list, kept = keepModules(string(data), keep)
			data = []byte(list)
		case isModuleFile(h.name):
			if kept == nil {
				return fmt.Errorf("%w: module %s comes before the module list", ErrNotApp, h.name)
			}
			if !kept[h.name] {
				if err := cr.skip(h); err != nil {
					return err
				}
				continue
			}
		case h.name == "init" && h.size <= maxStripInit:
			if data, err = cr.readAll(h, maxStripInit); err != nil {
				return err
			}
			data = stripInit(data)
		}
		if err := copyEntry(bw, cr, h, data); err != nil {
			return err
		}
	}
	if kept == nil {
		return fmt.Errorf("%w: no module list", ErrNotApp)
	}
	if err := writeHeader(bw, 0, 0, 1, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	return bw.Flush()
}

// copyEntry writes h with data, or, when data is nil, with its bytes read
// from cr.
func copyEntry(w io.Writer, cr *cpioReader, h cpioHeader, data []byte) error {
	size := h.size
	if data != nil {
		size = int64(len(data))
	}
	if err := writeHeader(w, h.ino, h.mode, int(h.nlink), int(size), h.rdevMajor, h.rdevMinor, h.name); err != nil {
		return err
	}
	if data != nil {
		return writePadded(w, data)
	}
	return cr.copyData(w, h)
}

// keepModules reads the init's module list ("module: dependencies") and
// returns the lines of the modules named in keep and of their
// dependencies, in their order, and the set of those module paths.
func keepModules(list string, keep []string) (string, map[string]bool) {
	want := map[string]bool{}
	for _, k := range keep {
		want[modName(k)] = true
	}
	// A line may name only a module's direct dependencies (as for Debian
	// 13's kernel): keep the closure.
	deps := map[string][]string{}
	var todo []string
	lines := strings.Split(list, "\n")
	for _, l := range lines {
		mod, ds, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		mod = strings.TrimSpace(mod)
		deps[mod] = strings.Fields(ds)
		if want[nameOfPath(mod)] {
			todo = append(todo, mod)
		}
	}
	kept := map[string]bool{}
	for len(todo) > 0 {
		m := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if !kept[m] {
			kept[m] = true
			todo = append(todo, deps[m]...)
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if mod, _, ok := strings.Cut(l, ":"); ok && kept[strings.TrimSpace(mod)] {
			b.WriteString(l + "\n")
		}
	}
	return b.String(), kept
}

// decompressed reads r as zstd, gzip or plain, by its first bytes.
func decompressed(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xB5, 0x2F, 0xFD}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxSlimInput))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	case bytes.HasPrefix(magic, []byte{0x1F, 0x8B}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(magic, []byte("070701")):
		return br, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: neither zstd, gzip nor a newc cpio archive", ErrNotApp)
}

// cpioHeader is a newc header's fields that Slim keeps.
type cpioHeader struct {
	name                 string
	ino, mode, nlink     uint32
	size                 int64
	rdevMajor, rdevMinor uint32
}

// cpioReader reads newc entries: a 110-byte header of "070701" and 13
// eight-digit hex fields, the name with its NUL, padding to 4 bytes, the
// data, padding to 4 bytes.
type cpioReader struct {
	r   *bufio.Reader
	off int64 // bytes read, for the padding
}

func (c *cpioReader) next() (cpioHeader, error) {
	var raw [110]byte
	if _, err := io.ReadFull(c.r, raw[:]); err != nil {
		return cpioHeader{}, fmt.Errorf("cpio header: %w", err)
	}
	c.off += 110
	if string(raw[:6]) != "070701" {
		return cpioHeader{}, fmt.Errorf("%w: a cpio header that is not newc", ErrNotApp)
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(raw[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return cpioHeader{}, fmt.Errorf("cpio header field %d: %v", i, err)
		}
		f[i] = uint32(v)
	}
	// Fields: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	h := cpioHeader{ino: f[0], mode: f[1], nlink: f[4], size: int64(f[6]), rdevMajor: f[9], rdevMinor: f[10]}
	if f[11] < 2 || f[11] > maxNameBytes {
		return h, fmt.Errorf("cpio name of %d bytes", f[11])
	}
	name := make([]byte, f[11])
	if _, err := io.ReadFull(c.r, name); err != nil {
		return h, err
	}
	c.off += int64(len(name))
	h.name = string(name[:len(name)-1])
	if name[len(name)-1] != 0 || !validArchiveName(h.name) {
		return h, fmt.Errorf("cpio name %q", name)
	}
	return h, c.discard(pad4(c.off))
}

// validArchiveName is a clean relative path of printable bytes, or the
// trailer: names reach error messages shown on a terminal.
func validArchiveName(n string) bool {
	if strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	_, ok := clean(n)
	return ok && path.Clean(n) == n || n == "TRAILER!!!"
}

// readAll reads h's data and padding; data larger than max is an error.
func (c *cpioReader) readAll(h cpioHeader, max int64) ([]byte, error) {
	if h.size > max {
		return nil, fmt.Errorf("%q: %d bytes, more than %d", h.name, h.size, max)
	}
	b := make([]byte, h.size)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, err
	}
	c.off += h.size
	return b, c.discard(pad4(c.off))
}

// copyData copies h's data to w, padded, and passes over its padding.
func (c *cpioReader) copyData(w io.Writer, h cpioHeader) error {
	if _, err := io.CopyN(w, c.r, h.size); err != nil {
		return fmt.Errorf("cpio: %q: %w", h.name, err)
	}
	c.off += h.size
	if _, err := w.Write(make([]byte, pad4(h.size))); err != nil {
		return err
	}
	return c.discard(pad4(c.off))
}

// skip passes over h's data and padding.
func (c *cpioReader) skip(h cpioHeader) error {
	if err := c.discard(h.size); err != nil {
		return err
	}
	return c.discard(pad4(c.off))
}

func (c *cpioReader) discard(n int64) error {
	if _, err := io.CopyN(io.Discard, c.r, n); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	c.off += n
	return nil
}

// pad4 is how many bytes lead from n to a multiple of 4.
func pad4(n int64) int64 { return (4 - n%4) % 4 }
