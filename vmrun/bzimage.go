package vmrun

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/c2vm/c2vm/internal/bounded"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/klauspost/compress/zstd"
)

// A bzImage starts its kernel by decompressing it, in the guest. Under
// emulation that is slow (Debian's xz-compressed 8 MiB kernel: about 4 s
// of a 12 s boot under TCG, before the kernel's first line). The
// decompressed kernel, an ELF file with a PVH entry point (Xen's note 18,
// which Debian's and Ubuntu's kernels carry), is one QEMU starts directly;
// c2vm run makes it once per disk, on the host.

// bzHeader is the Linux x86 boot protocol's setup header, read from the
// start of a bzImage.
type bzHeader []byte

func (h bzHeader) setupSects() int      { return int(h[0x1F1]) }
func (h bzHeader) magic() []byte        { return h[0x202:0x206] }
func (h bzHeader) version() uint16      { return binary.LittleEndian.Uint16(h[0x206:]) }
func (h bzHeader) payloadOffset() int64 { return int64(binary.LittleEndian.Uint32(h[0x248:])) }
func (h bzHeader) payloadLength() int64 { return int64(binary.LittleEndian.Uint32(h[0x24C:])) }
func (h bzHeader) initrdAddrMax() int64 { return int64(binary.LittleEndian.Uint32(h[0x22C:])) }

// Bounds on a kernel: Debian's bzImage is 8 MiB, its ELF 63 MiB.
const (
	maxKernelBytes = 64 << 20
	maxVmlinuxSize = 256 << 20
)

// xenElfnotePhys32Entry is the ELF note type of the PVH entry point.
const xenElfnotePhys32Entry = 18

// checkBzImage refuses a file that is not an x86 bzImage with a payload
// (boot protocol 2.08 or later): QEMU reads its header on the host.
func checkBzImage(k []byte) (payload []byte, err error) {
	if len(k) < 0x250 || !bytes.Equal(bzHeader(k).magic(), []byte("HdrS")) || bzHeader(k).version() < 0x208 {
		return nil, errors.New("the kernel is not an x86 bzImage (boot protocol 2.08 or later)")
	}
	h := bzHeader(k)
	sects := h.setupSects()
	if sects == 0 {
		sects = 4
	}
	start := int64(sects+1)*512 + h.payloadOffset()
	if start > int64(len(k)) || h.payloadLength() > int64(len(k))-start {
		return nil, errors.New("the kernel's payload lies outside it")
	}
	return k[start : start+h.payloadLength()], nil
}

// writeVmlinux decompresses a bzImage's payload into the file out and
// checks that it is an x86-64 ELF kernel with a PVH entry. ok is false,
// with no error, when the payload's compression is not one read here
// (lz4, lzo, bzip2, lzma) or what it holds is not such a kernel: the
// bzImage then boots as it is.
func writeVmlinux(ctx context.Context, payload []byte, out *os.File) (ok bool, err error) {
	w := &bounded.Writer{W: out, Left: maxVmlinuxSize, Err: fmt.Errorf("more than %d MiB", maxVmlinuxSize>>20)}
	switch {
	case bytes.HasPrefix(payload, []byte{0xFD, '7', 'z', 'X', 'Z', 0}):
		err = unxz(ctx, payload, w)
	case bytes.HasPrefix(payload, []byte{0x28, 0xB5, 0x2F, 0xFD}) && len(payload) > 8:
		// The kernel's build appends the decompressed size (le32) after
		// the frame (zstd22_with_size), which the decoder would take for
		// a second frame.
		var z *zstd.Decoder
		if z, err = zstd.NewReader(bytes.NewReader(payload[:len(payload)-4]), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxVmlinuxSize)); err == nil {
			_, err = io.Copy(w, z)
			z.Close()
		}
	case bytes.HasPrefix(payload, []byte{0x1F, 0x8B}):
		var z *gzip.Reader
		if z, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			z.Multistream(false)
			_, err = io.Copy(w, z)
		}
	default:
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("decompressing the kernel: %v", err)
	}
	return checkPVH(out) == nil, nil
}

// unxz runs xz: the kernel's xz streams use the x86 BCJ filter, which Go's
// xz package does not read. The kernel appends its size after the stream,
// which --single-stream ignores.
func unxz(ctx context.Context, payload []byte, w io.Writer) error {
	xz, err := hosttools.Look("xz")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, xz, "-dc", "--single-stream", "-T1", "--memlimit-decompress=256MiB")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(payload), w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xz: %v %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// checkPVH checks the decompressed kernel before QEMU loads it: a 64-bit
// x86 executable whose loaded segments lie within the file and below 4
// GiB, with a PVH entry note.
func checkPVH(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	e, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("the decompressed kernel: %v", err)
	}
	if e.Class != elf.ELFCLASS64 || e.Machine != elf.EM_X86_64 || e.Type != elf.ET_EXEC {
		return errors.New("the decompressed kernel is not an x86-64 executable")
	}
	pvh, noteBudget := false, int64(maxNoteBytes)
	for _, p := range e.Progs {
		if p.Filesz > p.Memsz || p.Off > uint64(fi.Size()) || p.Filesz > uint64(fi.Size())-p.Off {
			return errors.New("the decompressed kernel has a segment outside its file")
		}
		switch p.Type {
		case elf.PT_LOAD:
			if p.Paddr >= 1<<32 || p.Memsz >= 1<<32-p.Paddr {
				return errors.New("the decompressed kernel loads above 4 GiB")
			}
		case elf.PT_NOTE:
			// Segments may all point at the same bytes: the budget is
			// the kernel's, not each segment's.
			n := min(int64(p.Filesz), noteBudget, maxNotes)
			noteBudget -= n
			if !pvh && n > 0 && hasPVHNote(io.NewSectionReader(f, int64(p.Off), n)) {
				pvh = true
			}
		}
	}
	if !pvh {
		return errors.New("the decompressed kernel has no PVH entry point")
	}
	return nil
}

// maxNotes bounds the notes read from one segment of a kernel, and
// maxNoteBytes those read from all of them (Debian's kernel has 0.4 KiB).
const (
	maxNotes     = 64 << 10
	maxNoteBytes = 1 << 20
)

// hasPVHNote reads ELF notes (name size, description size, type, then
// the name and description, each padded to 4 bytes) for Xen's PVH entry.
func hasPVHNote(r io.Reader) bool {
	b, err := io.ReadAll(io.LimitReader(r, maxNotes))
	if err != nil {
		return false
	}
	for len(b) >= 12 {
		nameSz, descSz := int64(binary.LittleEndian.Uint32(b[0:])), int64(binary.LittleEndian.Uint32(b[4:]))
		typ := binary.LittleEndian.Uint32(b[8:])
		nameEnd := 12 + (nameSz+3)&^3
		end := nameEnd + (descSz+3)&^3
		if nameSz > maxNotes || descSz > maxNotes || end > int64(len(b)) {
			return false
		}
		if typ == xenElfnotePhys32Entry && nameSz == 4 && string(b[12:16]) == "Xen\x00" && descSz >= 4 {
			return true
		}
		b = b[end:]
	}
	return false
}
