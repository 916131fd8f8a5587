package diskformat

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// Digest is a file's SHA-256, for the manifest.
type Digest struct {
	Name   string
	SHA256 [sha256.Size]byte
}

// Manifest is the OVA's .mf: one "SHA256(name)= hex" line per file, the
// form the OVF specification gives and VirtualBox and VMware check.
func Manifest(files ...Digest) []byte {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "SHA256(%s)= %s\n", f.Name, hex.EncodeToString(f.SHA256[:]))
	}
	return []byte(b.String())
}

// files names the files inside an appliance's OVA.
func (a Appliance) files() (ovf, mf, vmdk string) {
	return a.Name + ".ovf", a.Name + ".mf", a.Name + "-disk1.vmdk"
}

// WriteOVA writes dst, the tar of a's descriptor, its manifest and vmdk (a
// streamOptimized VMDK), in the order the OVF specification wants: the
// descriptor first, so an importer can read it before the disk streams by,
// then the manifest, then the disk. Entries are dated mtime.
func WriteOVA(dst string, a Appliance, vmdk string, mtime time.Time) error {
	ovfName, mfName, diskName := a.files()
	disk, err := os.Open(vmdk)
	if err != nil {
		return err
	}
	defer disk.Close()
	fi, err := disk.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, disk); err != nil {
		return err
	}
	diskSum := Digest{Name: diskName}
	h.Sum(diskSum.SHA256[:0])
	ovf, err := OVF(a, File{Name: diskName, Size: fi.Size()})
	if err != nil {
		return err
	}
	mf := Manifest(Digest{Name: ovfName, SHA256: sha256.Sum256(ovf)}, diskSum)
	if _, err := disk.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return writeTar(dst, mtime, []member{{ovfName, int64(len(ovf)), strings.NewReader(string(ovf))},
		{mfName, int64(len(mf)), strings.NewReader(string(mf))}, {diskName, fi.Size(), disk}})
}

type member struct {
	name string
	size int64
	r    io.Reader
}

// writeTar writes members as a plain ustar archive, which OVF requires;
// a member beyond ustar's 8 GiB takes GNU's size extension, which
// VirtualBox and VMware read.
func writeTar(dst string, mtime time.Time, members []member) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: m.size, ModTime: mtime.Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if m.size >= 1<<33 {
			hdr.Format = tar.FormatGNU
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if n, err := io.Copy(tw, m.r); err != nil {
			return err
		} else if n != m.size {
			return fmt.Errorf("%s changed while it was packed", m.name)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Allocated is how many bytes of a file hold data, for the OVF's
// populatedSize: a raw disk's holes are the space nothing uses.
func Allocated(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.Size(), nil
	}
	return min(st.Blocks*512, fi.Size()), nil
}
