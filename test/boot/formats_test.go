//go:build boot

package boot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// outputs lists an output directory, files in subdirectories as dir/name.
func outputs(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	slices.Sort(names)
	return strings.Join(names, " ")
}

// qemuInfo is qemu-img info's JSON for a file read as format.
func qemuInfo(t *testing.T, format, p string) map[string]any {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-f", format, "--output=json", p).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", p, err)
	}
	var info map[string]any
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func sameDisk(t *testing.T, raw, other, format string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", "compare", "-q", "-f", "raw", "-F", format, raw, other).CombinedOutput(); err != nil {
		t.Errorf("%s differs from the raw disk: %v %s", filepath.Base(other), err, out)
	}
}

// TestFormatOnlyWhatWasAsked: named formats are all that is written (no
// linux.img), qcow2 is zstd-compressed, containerdisk lands in disk/.
func TestFormatOnlyWhatWasAsked(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	printed := assemble(t, nil, "-o", out, "--quiet", "--format", "qcow2,containerdisk", tarball)
	if got := outputs(t, out); got != "c2vm.json disk/linux.qcow2 linux.qcow2" {
		t.Fatalf("--format qcow2,containerdisk wrote %q", got)
	}
	if !strings.Contains(printed, filepath.Join(out, "linux.qcow2")) || strings.Contains(printed, "linux.img") {
		t.Errorf("printed files:\n%s", printed)
	}
	for _, f := range []string{"linux.qcow2", "disk/linux.qcow2"} {
		info := qemuInfo(t, "qcow2", filepath.Join(out, f))
		data, _ := info["format-specific"].(map[string]any)["data"].(map[string]any)
		if data["compression-type"] != "zstd" {
			t.Errorf("%s: compression type %v", f, data["compression-type"])
		}
		fi, _ := os.Stat(filepath.Join(out, f))
		if virt := info["virtual-size"].(float64); float64(fi.Size()) > 0.6*virt {
			t.Errorf("%s: %d bytes for a %.0f byte disk: not compressed", f, fi.Size(), virt)
		}
	}
}

// ovfSummary is what an importer reads from the descriptor, by local name.
type ovfSummary struct {
	Files []struct {
		ID   string `xml:"id,attr"`
		Href string `xml:"href,attr"`
		Size int64  `xml:"size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		Capacity int64  `xml:"capacity,attr"`
		FileRef  string `xml:"fileRef,attr"`
		Format   string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	Configs []struct {
		Key   string `xml:"key,attr"`
		Value string `xml:"value,attr"`
	} `xml:"VirtualSystem>VirtualHardwareSection>Config"`
}

func (s ovfSummary) firmware() string {
	for _, c := range s.Configs {
		if c.Key == "firmware" {
			return c.Value
		}
	}
	return ""
}

// unpackOVA extracts an OVA into dir and returns its member names in order.
func unpackOVA(t *testing.T, ova, dir string) []string {
	t.Helper()
	f, err := os.Open(ova)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") {
			t.Fatalf("OVA member %q of type %c", h.Name, h.Typeflag)
		}
		names = append(names, h.Name)
		w, err := os.Create(filepath.Join(dir, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

// checkManifest verifies every line of the .mf and that it covers every
// other member.
func checkManifest(t *testing.T, dir string, names []string) {
	t.Helper()
	mf, err := os.ReadFile(filepath.Join(dir, names[1]))
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`).FindAllStringSubmatch(string(mf), -1)
	if len(lines) != len(names)-1 {
		t.Errorf("manifest lists %d files of %d:\n%s", len(lines), len(names)-1, mf)
	}
	for _, l := range lines {
		if got := sha(t, filepath.Join(dir, l[1])); got != l[2] {
			t.Errorf("%s: SHA256 %s, manifest says %s", l[1], got, l[2])
		}
	}
}

// TestFormatOVA unpacks the OVA as an importer would, checks its order,
// manifest and descriptor, compares its disk with the raw one and boots it;
// a UEFI-only disk's descriptor asks for EFI.
func TestFormatOVA(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--format", "raw,ova", tarball)
	raw := filepath.Join(out, "linux.img")
	dir := outDir(t, "unpacked")
	names := unpackOVA(t, filepath.Join(out, "linux.ova"), dir)
	if len(names) != 3 || filepath.Ext(names[0]) != ".ovf" || filepath.Ext(names[1]) != ".mf" || filepath.Ext(names[2]) != ".vmdk" {
		t.Fatalf("OVA members %v, want the OVF first, the manifest, the disk", names)
	}
	checkManifest(t, dir, names)
	s := readOVF(t, filepath.Join(dir, names[0]))
	vmdk := filepath.Join(dir, names[2])
	fi, _ := os.Stat(vmdk)
	rawInfo, _ := os.Stat(raw)
	if len(s.Files) != 1 || s.Files[0].Href != names[2] || s.Files[0].Size != fi.Size() {
		t.Errorf("references %+v, disk member %s of %d bytes", s.Files, names[2], fi.Size())
	}
	if len(s.Disks) != 1 || s.Disks[0].Capacity != rawInfo.Size() || s.Disks[0].FileRef != s.Files[0].ID || !strings.HasSuffix(s.Disks[0].Format, "#streamOptimized") {
		t.Errorf("disk %+v, raw disk %d bytes", s.Disks, rawInfo.Size())
	}
	if fw := s.firmware(); fw != "bios" {
		t.Errorf("a hybrid disk's OVF asks for firmware %q, want bios", fw)
	}
	if sub := qemuInfo(t, "vmdk", vmdk)["format-specific"].(map[string]any)["data"].(map[string]any)["create-type"]; sub != "streamOptimized" {
		t.Errorf("VMDK create type %v", sub)
	}
	sameDisk(t, raw, vmdk, "vmdk")
	if m := marker(t, vmdk, "bios"); m["fw"] != "bios" || m["root"] != "/dev/vda3" {
		t.Errorf("the OVA's disk booted with %v", m)
	}

	uefi := outDir(t, "uefi")
	assemble(t, nil, "-o", uefi, "--firmware", "uefi", "--format", "ova", tarball)
	udir := outDir(t, "uefi-unpacked")
	unames := unpackOVA(t, filepath.Join(uefi, "linux.ova"), udir)
	if fw := readOVF(t, filepath.Join(udir, unames[0])).firmware(); fw != "efi" {
		t.Errorf("a UEFI-only disk's OVF asks for firmware %q, want efi", fw)
	}
}

func readOVF(t *testing.T, p string) ovfSummary {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var s ovfSummary
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return s
}

// TestFormatVHDAzure: a fixed VHD whose virtual size is a whole number of
// MiB, as Azure requires; it boots.
func TestFormatVHDAzure(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--format", "vhd-azure", tarball)
	if got := outputs(t, out); got != "c2vm.json linux-azure.vhd" {
		t.Fatalf("--format vhd-azure wrote %q", got)
	}
	vhd := filepath.Join(out, "linux-azure.vhd")
	info := qemuInfo(t, "vpc", vhd)
	size := int64(info["virtual-size"].(float64))
	if info["format"] != "vpc" || size%(1<<20) != 0 {
		t.Errorf("qemu-img info: format %v, virtual size %d", info["format"], size)
	}
	// The footer (the last 512 bytes) says the disk type, 2 for fixed, and
	// a fixed VHD is its data and that footer only.
	f, err := os.Open(vhd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	footer := make([]byte, 512)
	f.ReadAt(footer, fi.Size()-512)
	if string(footer[:8]) != "conectix" || binary.BigEndian.Uint32(footer[60:]) != 2 || fi.Size() != size+512 ||
		int64(binary.BigEndian.Uint64(footer[48:])) != size {
		t.Errorf("not a fixed VHD of %d bytes: file %d bytes, footer %x", size, fi.Size(), footer[:64])
	}
	if m := marker(t, vhd, "uefi"); m["fw"] != "uefi" {
		t.Errorf("the VHD booted with %v", m)
	}
}

// TestFormatGCE: the archive holds exactly disk.raw, stored sparse in GNU
// tar's format, byte-equal to linux.img.
func TestFormatGCE(t *testing.T) {
	_, tarball := fixture(t)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--format", "raw,gce", tarball)
	raw := filepath.Join(out, "linux.img")
	f, err := os.Open(filepath.Join(out, "linux-gce.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 512)
	if _, err := io.ReadFull(zr, head); err != nil {
		t.Fatal(err)
	}
	rawInfo, _ := os.Stat(raw)
	// The old GNU header: type 'S', the stored size at 124, the real size
	// at 483, both octal.
	stored, real := octal(head[124:136]), octal(head[483:495])
	if head[156] != 'S' || real != rawInfo.Size() || stored >= rawInfo.Size() {
		t.Errorf("entry type %q, stored %d bytes of %d, disk %d bytes: not sparse", head[156], stored, real, rawInfo.Size())
	}
	tr := tar.NewReader(io.MultiReader(bytes.NewReader(head), zr))
	h, err := tr.Next()
	if err != nil || h.Name != "disk.raw" {
		t.Fatalf("first member %v, %v", h, err)
	}
	sum := sha256.New()
	io.Copy(sum, tr)
	if hex.EncodeToString(sum.Sum(nil)) != sha(t, raw) {
		t.Error("disk.raw differs from linux.img")
	}
	if h, err := tr.Next(); err != io.EOF {
		t.Errorf("more than disk.raw: %v %v", h, err)
	}
}

func octal(b []byte) int64 {
	n, _ := strconv.ParseInt(strings.Trim(string(b), " \x00"), 8, 64)
	return n
}
