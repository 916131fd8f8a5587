package vmrun

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// c2vm writes two formats that are archives holding a disk: an OVA (a tar
// of an OVF and a VMDK) and a GCE image (a gzip'd tar of disk.raw). Booted
// as raw disks they only reach "No bootable device". They are refused at
// once with the disk inside named, and never written.

// maxArchiveHeaders bounds how many tar entries are read to name the disk.
const maxArchiveHeaders = 16

// refuseArchive returns an error when head starts an archive or a
// compressed file.
func refuseArchive(f *os.File, path string, head []byte) error {
	kind := ""
	switch {
	case len(head) >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8:
		kind = "gzip"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		kind = "xz"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		kind = "zstd"
	case bytes.HasPrefix(head, []byte("BZh")) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		kind = "bzip2"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		kind = "zip"
	case isTarHeader(head):
		kind = "tar"
	default:
		return nil
	}
	msg := fmt.Sprintf("%s is a %s archive, not a disk", path, kind)
	fix := "unpack the disk from it and give that to c2vm run"
	if name := archiveDisk(f, kind); name != "" {
		flag := "-xf"
		if kind == "gzip" {
			flag = "-xzf"
		}
		msg = fmt.Sprintf("%s is a %s archive holding the disk %s", path, kind, name)
		fix = fmt.Sprintf("unpack it and run the disk: tar %s %s %s && c2vm run %s", flag, shellQuote(path), name, name)
	}
	return usererr.New(msg, fix)
}

// isTarHeader tells a ustar or GNU tar header by its magic and checksum.
func isTarHeader(b []byte) bool {
	if len(b) < 512 || !(bytes.Equal(b[257:263], []byte("ustar\x00")) || bytes.Equal(b[257:265], []byte("ustar  \x00"))) {
		return false
	}
	// The checksum field (148, 8 bytes of octal) sums the header's bytes
	// with the field itself read as spaces.
	want, err := strconv.ParseUint(strings.Trim(string(b[148:156]), " \x00"), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += uint64(c)
	}
	return sum == want
}

// archiveDisk names the first disk image in a tar, plain or gzip'd, reading
// at most maxArchiveHeaders headers; "" when there is none it can name.
func archiveDisk(f *os.File, kind string) string {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ""
	}
	var r io.Reader = f
	if kind == "gzip" {
		z, err := gzip.NewReader(f)
		if err != nil {
			return ""
		}
		defer z.Close()
		r = z
	} else if kind != "tar" {
		return ""
	}
	tr := tar.NewReader(r)
	for range maxArchiveHeaders {
		h, err := tr.Next()
		if err != nil {
			return ""
		}
		if h.Typeflag != tar.TypeReg || !isDiskName(h.Name) {
			continue
		}
		return baseName(h.Name)
	}
	return ""
}

// isDiskName tells the names c2vm's archives give their disks.
func isDiskName(n string) bool {
	for _, ext := range []string{".vmdk", ".raw", ".img", ".qcow2", ".vhd", ".vhdx", ".vdi"} {
		if strings.HasSuffix(strings.ToLower(n), ext) {
			return baseName(n) == n
		}
	}
	return false
}
