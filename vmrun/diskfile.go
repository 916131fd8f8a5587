package vmrun

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// A disk handed to c2vm run may come from anyone, and several disk formats
// can name other files: a qcow2 backing file or external data file, a VMDK
// descriptor's extents or parent. QEMU opens those files with the user's
// rights, so a crafted disk could show a host file to the guest, writable.
// c2vm run therefore reads the format from the file's own headers (never
// from its name, never by QEMU's probing) and boots only disks that hold
// all their data themselves, unless the user allows other files.

// diskImage is what a disk file's headers say.
type diskImage struct {
	// Format is QEMU's driver name: raw, qcow2, vmdk, vhdx, vdi or vpc.
	Format string
	// External names the other files the image would make QEMU open.
	External []string
}

// inspectBytes is how much of a file inspectDisk reads: every header it
// checks lies in the first 64 KiB (a VMDK's embedded descriptor is read
// separately, bounded by maxDescriptor).
const inspectBytes = 64 << 10

// maxDescriptor bounds a VMDK descriptor: real ones are a few hundred bytes.
const maxDescriptor = 64 << 10

// inspectDisk reads a disk file's format from its headers and refuses
// archives, formats c2vm run does not boot, and, unless allowExternal,
// images that name other files. It only reads the file.
func inspectDisk(path string, allowExternal bool) (diskImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return diskImage{}, err
	}
	defer f.Close()
	head := make([]byte, inspectBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return diskImage{}, err
	}
	head = head[:n]
	if err := refuseArchive(f, path, head); err != nil {
		return diskImage{}, err
	}
	img, err := imageFormat(f, head)
	if err != nil {
		return diskImage{}, usererr.New(fmt.Sprintf("%s: %v", path, err),
			"give a disk c2vm wrote (raw, qcow2, vmdk, vhdx, vdi or vhd), or convert it with qemu-img convert -O qcow2")
	}
	if len(img.External) > 0 && !allowExternal {
		return diskImage{}, usererr.New(
			fmt.Sprintf("%s is a %s image that reads other files: %s", path, img.Format, strings.Join(img.External, "; ")),
			"make it self-contained (qemu-img convert -O qcow2 "+shellQuote(path)+" self.qcow2), or add --allow-external if you trust every file it names")
	}
	return img, nil
}

// imageFormat tells the format by magic numbers, as QEMU's probes do, and
// lists what each format would open besides the file.
func imageFormat(f *os.File, head []byte) (diskImage, error) {
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return qcow2Image(head)
	case bytes.HasPrefix(head, []byte("KDMV")):
		return vmdkSparseImage(f, head)
	case bytes.HasPrefix(head, []byte("COWD")):
		return diskImage{}, fmt.Errorf("a VMDK of the old COWD kind is not booted by c2vm run")
	case isVMDKDescriptor(head):
		return diskImage{Format: "vmdk", External: descriptorFiles(head)}, nil
	case bytes.HasPrefix(head, []byte("QED\x00")):
		return diskImage{}, fmt.Errorf("QED images are not booted by c2vm run")
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		// QEMU refuses differencing VHDX files, so a VHDX is self-contained.
		return diskImage{Format: "vhdx"}, nil
	case len(head) >= 68 && binary.LittleEndian.Uint32(head[64:]) == 0xbeda107f:
		// QEMU refuses a VDI whose link UUID names a parent.
		return diskImage{Format: "vdi"}, nil
	case bytes.HasPrefix(head, []byte("conectix")) || hasVHDFooter(f):
		return vhdImage(f, head)
	}
	return diskImage{Format: "raw"}, nil
}

// qcow2Image reads the header fields that name other files: the backing
// file (offset 8, length 16) and, from version 3, the incompatible feature
// bit for an external data file.
func qcow2Image(head []byte) (diskImage, error) {
	if len(head) < 104 {
		return diskImage{}, fmt.Errorf("the qcow2 header is cut short")
	}
	h := qcow2Header(head)
	img := diskImage{Format: "qcow2"}
	switch v := h.version(); v {
	case 2, 3:
	case 1:
		return diskImage{}, fmt.Errorf("qcow version 1 images are not booted by c2vm run")
	default:
		return diskImage{}, fmt.Errorf("unknown qcow2 version %d", v)
	}
	if off, size := h.backingFileOffset(), h.backingFileSize(); off != 0 || size != 0 {
		name := "a backing file"
		if size <= 1023 && off+uint64(size) <= uint64(len(head)) {
			name = "backing file " + printable(head[off:off+uint64(size)])
		}
		img.External = append(img.External, name)
	}
	if h.version() >= 3 && h.incompatibleFeatures()&qcow2ExternalData != 0 {
		img.External = append(img.External, "an external data file")
	}
	return img, nil
}

// qcow2Header names the fields of a qcow2 header (docs/interop/qcow2.txt
// in QEMU's sources); every number is big-endian.
type qcow2Header []byte

func (h qcow2Header) version() uint32           { return binary.BigEndian.Uint32(h[4:]) }
func (h qcow2Header) backingFileOffset() uint64 { return binary.BigEndian.Uint64(h[8:]) }
func (h qcow2Header) backingFileSize() uint32   { return binary.BigEndian.Uint32(h[16:]) }
func (h qcow2Header) incompatibleFeatures() uint64 {
	return binary.BigEndian.Uint64(h[72:])
}

// qcow2ExternalData is incompatible feature bit 2: guest data lives in
// another file, named by a header extension.
const qcow2ExternalData = 1 << 2

// vmdkHeader names the fields of a VMDK sparse extent header (VMware's
// Virtual Disk Format 5.0); every number is little-endian, offsets in
// 512-byte sectors.
type vmdkHeader []byte

func (h vmdkHeader) descriptorOffset() uint64 { return binary.LittleEndian.Uint64(h[28:]) }
func (h vmdkHeader) descriptorSize() uint64   { return binary.LittleEndian.Uint64(h[36:]) }

// vmdkSparseImage reads a monolithic or stream-optimized VMDK's embedded
// descriptor: QEMU takes its parent (a backing file) from there.
func vmdkSparseImage(f *os.File, head []byte) (diskImage, error) {
	if len(head) < 512 {
		return diskImage{}, fmt.Errorf("the VMDK header is cut short")
	}
	h := vmdkHeader(head)
	img := diskImage{Format: "vmdk"}
	off, size := h.descriptorOffset(), h.descriptorSize()
	if off == 0 || size == 0 {
		return img, nil
	}
	if size > maxDescriptor/512 || off > 1<<40 {
		return diskImage{}, fmt.Errorf("the VMDK's embedded descriptor (%d sectors at sector %d) is not where a descriptor can be", size, off)
	}
	desc := make([]byte, size*512)
	n, err := f.ReadAt(desc, int64(off*512))
	if err != nil && err != io.EOF {
		return diskImage{}, err
	}
	if p := descriptorParent(desc[:n]); p != "" {
		img.External = append(img.External, "parent "+p)
	}
	return img, nil
}

// isVMDKDescriptor tells a text descriptor, which QEMU opens as a VMDK whose
// extents are other files.
func isVMDKDescriptor(head []byte) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	return bytes.HasPrefix(t, []byte("# Disk DescriptorFile")) || bytes.HasPrefix(t, []byte("# Disk Descriptor File")) ||
		vmdkExtent.Match(head) && bytes.Contains(head, []byte("createType"))
}

// vmdkExtent matches a descriptor's extent lines: access, size in sectors,
// type, then the file in quotes.
var vmdkExtent = regexp.MustCompile(`(?m)^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"\n]*)"`)

// descriptorFiles lists a text descriptor's extent files and parent; a
// descriptor always names at least its extents.
func descriptorFiles(desc []byte) []string {
	var out []string
	for _, m := range vmdkExtent.FindAllSubmatch(desc, 16) {
		out = append(out, "extent "+printable(m[1]))
	}
	if p := descriptorParent(desc); p != "" {
		out = append(out, "parent "+p)
	}
	if len(out) == 0 {
		out = append(out, "the files its descriptor names")
	}
	return out
}

var vmdkParent = regexp.MustCompile(`(?m)^\s*parentFileNameHint\s*=\s*"([^"\n]*)"`)

func descriptorParent(desc []byte) string {
	if m := vmdkParent.FindSubmatch(desc); m != nil {
		return printable(m[1])
	}
	return ""
}

// vhdImage reads a VHD footer's disk type (offset 60): QEMU boots fixed
// and dynamic disks; a differencing one names a parent.
func vhdImage(f *os.File, head []byte) (diskImage, error) {
	footer := head
	if !bytes.HasPrefix(head, []byte("conectix")) {
		footer = vhdFooter(f)
	}
	if len(footer) < 64 {
		return diskImage{}, fmt.Errorf("the VHD footer is cut short")
	}
	switch t := binary.BigEndian.Uint32(footer[60:]); t {
	case 2, 3:
		return diskImage{Format: "vpc"}, nil
	case 4:
		return diskImage{Format: "vpc", External: []string{"a parent disk (a differencing VHD)"}}, nil
	default:
		return diskImage{}, fmt.Errorf("unknown VHD disk type %d", t)
	}
}

func hasVHDFooter(f *os.File) bool { return vhdFooter(f) != nil }

// vhdFooter is a fixed VHD's footer, in its last 512 bytes, or nil.
func vhdFooter(f *os.File) []byte {
	fi, err := f.Stat()
	if err != nil || fi.Size() < 512 {
		return nil
	}
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, fi.Size()-512); err != nil || !bytes.HasPrefix(b, []byte("conectix")) {
		return nil
	}
	return b
}

// printable quotes a name read from a disk for a message, so its bytes can
// neither end the line nor pass for shell syntax.
func printable(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%q", b)
}

// shellQuote quotes a path the user gave for a command line in a fix.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// baseName is a file's name for a fix line, or "" when the name could not
// be typed safely.
func baseName(p string) string {
	b := filepath.Base(p)
	if !regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,128}$`).MatchString(b) || strings.HasPrefix(b, "-") {
		return ""
	}
	return b
}
