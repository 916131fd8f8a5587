package exporter

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"path"
	"sort"
	"strings"
)

// Inventory is what pass one learns about the final root tree without
// reading file contents: enough to size the disk, find the kernel and seed
// the ext4 directory hash.
type Inventory struct {
	Entries   int64 // every object, the root included: the inodes needed
	Dirs      int64
	DataBytes int64 // regular file bytes, each rounded up to a block
	DirBytes  int64 // directory entries' bytes
	XattrBlk  int64 // objects whose xattrs do not fit in the inode
	LongLinks int64 // symlinks whose target needs a block
	// Boot holds the top-level entries, /boot's and the probePaths: what
	// kernel discovery and first-boot set-up look at.
	Boot map[string]*tar.Header

	meta hash.Hash // headers of the final tree, in order
}

func newInventory() *Inventory {
	return &Inventory{Boot: map[string]*tar.Header{}, meta: sha256.New()}
}

const blockSize = 4096

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// add counts one object of the final tree; name is clean and relative.
func (inv *Inventory) add(name string, h *tar.Header) {
	inv.Entries++
	inv.DirBytes += roundUp(int64(8+len(path.Base(name))), 4)
	switch h.Typeflag {
	case tar.TypeDir:
		inv.Dirs++
	case tar.TypeReg, tar.TypeRegA:
		inv.DataBytes += roundUp(h.Size, blockSize)
		// Files over 4 extents (128 MiB each at most) need extent blocks.
		inv.DataBytes += h.Size / (128 << 20) * blockSize
	case tar.TypeSymlink:
		if len(h.Linkname) >= 60 {
			inv.LongLinks++
		}
	}
	xattrBytes := 0
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			xattrBytes += len(k) + len(v) + 16
		}
	}
	// A 256-byte inode keeps about 100 bytes of xattrs in place.
	if xattrBytes > 96 {
		inv.XattrBlk++
	}
	if !strings.Contains(name, "/") || strings.HasPrefix(name, "boot/") && !strings.Contains(name[5:], "/") || probePaths[name] {
		inv.Boot[name] = h
	}
	var b [8]byte
	inv.meta.Write([]byte(name))
	binary.LittleEndian.PutUint64(b[:], uint64(h.Size))
	inv.meta.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], uint64(h.Mode)<<32|uint64(h.Typeflag))
	inv.meta.Write(b[:])
	inv.meta.Write([]byte(h.Linkname))
}

// MetaDigest is a digest of the final tree's names, types, sizes and links:
// known before any content is written, it seeds the ext4 directory hash.
func (inv *Inventory) MetaDigest() []byte { return inv.meta.Sum(nil) }

// resolve follows symlinks among the boot entries to a regular file.
func (inv *Inventory) resolve(name string) (string, bool) {
	for range 8 {
		h := inv.Boot[name]
		if h == nil {
			return "", false
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeLink:
			return name, true
		case tar.TypeSymlink:
			t := h.Linkname
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir(name), t)
			}
			name = strings.TrimPrefix(path.Clean(t), "/")
		default:
			return "", false
		}
	}
	return "", false
}

// probePaths are files whose presence changes what assembly adds.
var probePaths = map[string]bool{
	"usr/lib/systemd/systemd-growfs": true, "lib/systemd/systemd-growfs": true,
	"etc/systemd/system": true, "etc/repart.d": true,
	"etc/repart.d/50-c2vm-root.conf": true, "etc/systemd/system/c2vm-growfs.service": true,
	"etc/systemd/system/local-fs.target.wants": true,
}

// Has reports whether the tree has a path, following a symlinked first
// component such as merged-usr's /lib -> usr/lib.
func (inv *Inventory) Has(p string) bool {
	if _, ok := inv.Boot[p]; ok {
		return true
	}
	first, rest, ok := strings.Cut(p, "/")
	if h := inv.Boot[first]; ok && h != nil && h.Typeflag == tar.TypeSymlink {
		_, ok := inv.Boot[strings.TrimPrefix(path.Join(h.Linkname, rest), "/")]
		return ok
	}
	return false
}

// BootFiles is the kernel and initramfs a disk boots.
type BootFiles struct {
	// Stable are the distro's symlink pairs (kernel, initrd), tried in order at
	// boot so that a kernel upgraded inside the guest boots next time.
	Stable [][2]string
	// Kernel and Initrd are the newest versioned pair, the fallback.
	Kernel, Initrd string
}

// FindBoot picks the kernel and initramfs, or reports none.
func (inv *Inventory) FindBoot() (BootFiles, bool) {
	var bf BootFiles
	for _, p := range [][2]string{{"vmlinuz", "initrd.img"}, {"boot/vmlinuz", "boot/initrd.img"}} {
		_, k := inv.resolve(p[0])
		_, i := inv.resolve(p[1])
		if k && i {
			bf.Stable = append(bf.Stable, p)
		}
	}
	var versions []string
	for name := range inv.Boot {
		if v, ok := strings.CutPrefix(name, "boot/vmlinuz-"); ok {
			if _, ok := inv.resolve(name); ok && inv.initrdFor(v) != "" {
				versions = append(versions, v)
			}
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	if n := len(versions); n > 0 {
		bf.Kernel, bf.Initrd = "boot/vmlinuz-"+versions[n-1], inv.initrdFor(versions[n-1])
	}
	return bf, len(bf.Stable) > 0 || bf.Kernel != ""
}

// initrdFor finds the initramfs of a kernel version under the names distros use.
func (inv *Inventory) initrdFor(v string) string {
	for _, n := range []string{"boot/initrd.img-" + v, "boot/initrd-" + v + ".img", "boot/initramfs-" + v + ".img", "boot/initrd-" + v} {
		if _, ok := inv.resolve(n); ok {
			return n
		}
	}
	return ""
}

// versionLess orders kernel versions like sort -V: runs of digits compare
// as numbers, other runs as text.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ta, ra := versionToken(a)
		tb, rb := versionToken(b)
		if ta != tb {
			if isDigit(ta[0]) && isDigit(tb[0]) {
				ta, tb = strings.TrimLeft(ta, "0"), strings.TrimLeft(tb, "0")
				if len(ta) != len(tb) {
					return len(ta) < len(tb)
				}
			}
			return ta < tb
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// versionToken splits off the leading run of digits or of non-digits.
func versionToken(s string) (string, string) {
	i := 1
	for i < len(s) && isDigit(s[i]) == isDigit(s[0]) {
		i++
	}
	return s[:i], s[i:]
}
