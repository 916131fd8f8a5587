package diskformat

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
)

func TestManifest(t *testing.T) {
	mf := string(Manifest(Digest{Name: "linux.ovf", SHA256: sha256.Sum256([]byte("a"))}, Digest{Name: "linux-disk1.vmdk"}))
	want := "SHA256(linux.ovf)= ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\n" +
		"SHA256(linux-disk1.vmdk)= " + strings.Repeat("0", 64) + "\n"
	if mf != want {
		t.Errorf("manifest\n%s\nwant\n%s", mf, want)
	}
}

// TestWriteOVA packs a stand-in disk and reads the archive back as an
// importer does: descriptor first, then the manifest, whose digests match
// the members, then the disk the descriptor references with its size.
func TestWriteOVA(t *testing.T) {
	dir := t.TempDir()
	vmdk := filepath.Join(dir, "in.vmdk")
	disk := bytes.Repeat([]byte("streamOptimized"), 10000)
	if err := os.WriteFile(vmdk, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "linux.ova")
	mtime := time.Unix(1700000000, 5)
	if err := WriteOVA(dst, DefaultAppliance("linux", false, 8<<30, 1<<30), vmdk, mtime); err != nil {
		t.Fatal(err)
	}
	members := readTar(t, dst)
	if len(members) != 3 || members[0].name != "linux.ovf" || members[1].name != "linux.mf" || members[2].name != "linux-disk1.vmdk" {
		t.Fatalf("members %v", members)
	}
	for _, m := range members {
		if m.hdr.Format != tar.FormatUSTAR || !m.hdr.ModTime.Equal(time.Unix(1700000000, 0)) || m.hdr.Mode != 0o644 {
			t.Errorf("%s: format %v, time %v, mode %o", m.name, m.hdr.Format, m.hdr.ModTime, m.hdr.Mode)
		}
	}
	if !bytes.Equal(members[2].data, disk) {
		t.Error("disk changed in the archive")
	}
	sums := map[string]string{}
	for _, l := range regexp.MustCompile(`(?m)^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`).FindAllStringSubmatch(string(members[1].data), -1) {
		sums[l[1]] = l[2]
	}
	for _, m := range []tarEntry{members[0], members[2]} {
		sum := sha256.Sum256(m.data)
		if sums[m.name] != hex.EncodeToString(sum[:]) {
			t.Errorf("manifest digest of %s: %q", m.name, sums[m.name])
		}
	}
	p := parseOVF(t, members[0].data)
	if p.References[0].Href != "linux-disk1.vmdk" || p.References[0].Size != int64(len(disk)) || p.Disks[0].Capacity != 8<<30 {
		t.Errorf("descriptor: %+v %+v", p.References, p.Disks)
	}
}

type tarEntry struct {
	name string
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, p string) []tarEntry {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tarEntry
	for _, m := range ocitest.ReadTar(t, f) {
		out = append(out, tarEntry{m.Header.Name, m.Header, m.Data})
	}
	return out
}
