package disk

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/exporter/diskformat"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Maker says how a format is made from the raw disk, which is always what
// assembly writes first (our ext4 writer writes a raw disk).
type Maker int

const (
	MakeRaw  Maker = iota // the assembled disk as it is
	MakeQemu              // qemu-img convert
	MakeGCE               // GNU tar: disk.raw, sparse, gzip'ed
	MakeOVA               // qemu-img to a streamOptimized VMDK, then c2vm's OVF and manifest, in a tar
)

// Format is an output disk format.
type Format struct {
	Name    string   // as given to --format and C2VM_FORMAT
	File    string   // the output's path inside the output directory
	Make    Maker    // how it is made
	QemuFmt string   // qemu-img -O (MakeQemu, and the VMDK inside an OVA)
	Create  []string // qemu-img creation options (-o …)
	Flags   []string // other qemu-img convert flags (-c)
	// Owner is the uid and gid the file gets in an image, 0 for root:
	// KubeVirt's QEMU runs as 107 and reads a containerDisk's disk as it.
	Owner int
}

// Options qemu-img is given for some formats.
var (
	// zstd-compressed qcow2 is about a third of the content; QEMU 5.1 and
	// later read it.
	zstdQcow2 = []string{"-o", "compression_type=zstd"}
	compress  = []string{"-c"}
	// A fixed VHD of the exact size (force_size, not qemu's CHS rounding):
	// what Azure accepts, and Hyper-V boots. c2vm's disks are whole MiB
	// (NewLayout rounds up), the size Azure requires.
	fixedVHD        = []string{"-o", "subformat=fixed,force_size=on"}
	streamOptimized = []string{"-o", "subformat=streamOptimized"}
)

// formats is every format, raw first. The first six names are the original
// ones, in their original order.
var formats = []Format{
	{Name: "raw", File: "linux.img", Make: MakeRaw, QemuFmt: "raw"},
	{Name: "qcow2", File: "linux.qcow2", Make: MakeQemu, QemuFmt: "qcow2", Create: zstdQcow2, Flags: compress},
	{Name: "vmdk", File: "linux.vmdk", Make: MakeQemu, QemuFmt: "vmdk"},
	{Name: "vhdx", File: "linux.vhdx", Make: MakeQemu, QemuFmt: "vhdx"},
	{Name: "vdi", File: "linux.vdi", Make: MakeQemu, QemuFmt: "vdi"},
	{Name: "vhd", File: "linux.vhd", Make: MakeQemu, QemuFmt: "vpc", Create: fixedVHD},
	// For tools that cannot read compressed clusters, or to trade size for
	// write speed inside the guest.
	{Name: "qcow2-uncompressed", File: "linux.qcow2", Make: MakeQemu, QemuFmt: "qcow2"},
	{Name: "vhd-azure", File: "linux-azure.vhd", Make: MakeQemu, QemuFmt: "vpc", Create: fixedVHD},
	{Name: "ova", File: "linux.ova", Make: MakeOVA, QemuFmt: "vmdk", Create: streamOptimized},
	{Name: "gce", File: "linux-gce.tar.gz", Make: MakeGCE},
	{Name: "containerdisk", File: diskformat.ContainerDiskDir + "/linux.qcow2", Make: MakeQemu, QemuFmt: "qcow2", Create: zstdQcow2, Flags: compress, Owner: diskformat.KubeVirtQemuID},
}

// FormatNames lists the formats --format accepts.
func FormatNames() []string {
	var n []string
	for _, f := range formats {
		n = append(n, f.Name)
	}
	return n
}

// ParseFormats reads a comma-separated --format value. Its result starts
// with the raw disk assembly writes, followed by exactly the formats named
// (in the table's order, so raw comes first when named); when only raw or
// nothing is named, it is the raw disk alone. Outputs gives the files to
// write; callers that pass the named formats on drop the first entry. The
// shape is the one callers had when raw was always written: what assembly
// builds first, then what else to write.
func ParseFormats(s string) ([]Format, error) {
	named := map[string]bool{}
	byFile := map[string]string{}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || named[name] {
			continue
		}
		f, ok := lookupFormat(name)
		if !ok {
			return nil, usererr.New(fmt.Sprintf("unknown format %q", name), "use any of "+strings.Join(FormatNames(), ", ")+", separated by commas")
		}
		if other, clash := byFile[f.File]; clash {
			return nil, usererr.New(fmt.Sprintf("formats %s and %s both write %s", other, name, f.File), "name one of them")
		}
		named[name], byFile[f.File] = true, name
	}
	out := []Format{formats[0]}
	for _, f := range formats {
		if named[f.Name] {
			out = append(out, f)
		}
	}
	if len(out) == 2 && out[1].Make == MakeRaw {
		return out[:1], nil
	}
	return out, nil
}

// Outputs are the formats to write, from ParseFormats' result: the named
// ones, or raw when none is.
func Outputs(parsed []Format) []Format {
	if len(parsed) < 2 {
		return []Format{formats[0]} // a copy: callers append to it
	}
	return slices.Clone(parsed[1:])
}

func lookupFormat(name string) (Format, bool) {
	for _, f := range formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// FileName is the output file of a format, relative to the output
// directory.
func (f Format) FileName() string { return f.File }

// MinVirtualSize is the least virtual size of the formats that are sparse
// by nature, when the disk was sized automatically: the guest's root grows
// into it at first boot, and the bytes it does not use cost nothing. The
// raw disk stays tight, since BuildKit exports every byte of it.
const MinVirtualSize = 8 << 30

// Sparse says whether the format stores only what is written, so that a
// larger virtual size costs no bytes (qcow2, vmdk, vhdx, vdi; not the fixed
// VHDs).
func (f Format) Sparse() bool {
	return f.Make == MakeQemu && slices.Contains([]string{"qcow2", "vmdk", "vhdx", "vdi"}, f.QemuFmt)
}

// Converted says whether the format is made from the finished raw disk by
// an external tool (qemu-img, GNU tar) — in the frontend, its own build
// step — rather than by c2vm while assembling (raw, ova).
func (f Format) Converted() bool { return f.Make == MakeQemu || f.Make == MakeGCE }

// ConvertArgs are qemu-img's arguments to write raw as format f to dst at
// raw's size.
func (f Format) ConvertArgs(raw, dst string) []string {
	args := append([]string{"convert", "-q", "-f", "raw", "-O", f.QemuFmt}, f.Create...)
	args = append(args, f.Flags...)
	return append(args, raw, dst)
}

// Commands are the programs that make format f from raw, of rawSize bytes,
// as dst. A sparse format gets a virtual size of at least minVirtual: it
// is created at that size, and qemu-img fills it, told that it is zeros so
// that it writes no zeros. Nil for the formats c2vm writes itself.
func (f Format) Commands(raw, dst string, rawSize, minVirtual int64) [][]string {
	switch {
	case f.Make == MakeGCE:
		return [][]string{append([]string{"tar"}, diskformat.GCETarArgs(raw, dst)...)}
	case f.Make != MakeQemu:
		return nil
	case !f.Sparse() || minVirtual <= rawSize:
		return [][]string{append([]string{"qemu-img"}, f.ConvertArgs(raw, dst)...)}
	}
	create := append([]string{"qemu-img", "create", "-q", "-f", f.QemuFmt}, f.Create...)
	create = append(create, dst, strconv.FormatInt(minVirtual, 10))
	fill := append([]string{"qemu-img", "convert", "-q", "-n", "--target-is-zero", "-f", "raw", "-O", f.QemuFmt}, f.Flags...)
	return [][]string{create, append(fill, raw, dst)}
}

// Dir is the directory the output file is in, "" for the top.
func (f Format) Dir() string {
	if d := path.Dir(f.File); d != "." {
		return d
	}
	return ""
}
