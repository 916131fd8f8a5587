package exporter

import (
	"fmt"
	"strings"
)

// Format is an output disk format. raw is always written as linux.img;
// the others are converted from it with qemu-img.
type Format struct {
	Name    string   // as given to --format
	Ext     string   // file name extension
	QemuFmt string   // qemu-img -O
	Opts    []string // extra qemu-img convert arguments
}

var formats = []Format{
	{Name: "raw", Ext: "img", QemuFmt: "raw"},
	{Name: "qcow2", Ext: "qcow2", QemuFmt: "qcow2"},
	{Name: "vmdk", Ext: "vmdk", QemuFmt: "vmdk"},
	{Name: "vhdx", Ext: "vhdx", QemuFmt: "vhdx"},
	{Name: "vdi", Ext: "vdi", QemuFmt: "vdi"},
	// Hyper-V and Azure read VHD as qemu's "vpc"; a fixed VHD with the exact
	// size is what Azure accepts, and Hyper-V boots it too.
	{Name: "vhd", Ext: "vhd", QemuFmt: "vpc", Opts: []string{"-o", "subformat=fixed,force_size=on"}},
}

// FormatNames lists the formats --format accepts.
func FormatNames() []string {
	var n []string
	for _, f := range formats {
		n = append(n, f.Name)
	}
	return n
}

// ParseFormats reads a comma-separated --format value; raw is always
// included and comes first.
func ParseFormats(s string) ([]Format, error) {
	out := []Format{formats[0]}
	seen := map[string]bool{"raw": true}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			continue
		}
		f, ok := lookupFormat(name)
		if !ok {
			return nil, &InputError{Msg: fmt.Sprintf("unknown format %q", name), Fix: "use any of " + strings.Join(FormatNames(), ", ") + ", separated by commas"}
		}
		seen[name] = true
		out = append(out, f)
	}
	return out, nil
}

func lookupFormat(name string) (Format, bool) {
	for _, f := range formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// FileName is the output file of a format.
func (f Format) FileName() string { return "linux." + f.Ext }

// ConvertArgs are qemu-img's arguments to write raw as format f to dst.
func (f Format) ConvertArgs(raw, dst string) []string {
	args := append([]string{"convert", "-q", "-f", "raw", "-O", f.QemuFmt}, f.Opts...)
	return append(args, raw, dst)
}
