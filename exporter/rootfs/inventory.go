package rootfs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"path"
	"sort"
	"strings"
)

// Inventory is what Scan learns about the final tree without reading file
// contents: enough to size the disk, find the kernel and seed ids.
type Inventory struct {
	Entries int64 // objects, the root included: the inodes needed
	Dirs    int64
	Content int64 // bytes of file data (a sparse file counts its data only)
	// Blocks is an upper bound of the 4 KiB blocks the content takes in
	// ext4: data, extent index, directory, long-symlink and xattr blocks.
	Blocks int64
	// Boot holds the entries boot discovery, mode selection and
	// first-boot set-up read: a few top-level names, kernels and
	// initramfs, probePaths (keep).
	Boot map[string]BootEntry
	// Notes are what assembly should tell the user (sockets skipped).
	Notes []string

	meta    hash.Hash // names, kinds, sizes and links of the final tree
	sum     checkedSum
	kernels int // kernel and initramfs entries kept within maxBootEntries
}

// BootEntry is what boot discovery needs of an entry.
type BootEntry struct {
	Kind Kind
	Size int64
	Link string // a symlink's target
}

func newInventory() *Inventory {
	return &Inventory{Boot: map[string]BootEntry{}, meta: sha256.New()}
}

// add counts one object of the final tree. name is clean and relative;
// link is a symlink's target.
func (inv *Inventory) add(name string, m *meta, link string, hardlink bool) {
	inv.Entries++
	switch {
	case hardlink:
	case m.kind == KindDir:
		inv.Dirs++
	case m.kind == KindReg:
		inv.sum.add(&inv.Content, m.data)
		inv.sum.add(&inv.Blocks, fileBlocks(m.data, int64(m.segs), m.sparse))
	case m.kind == KindSymlink && m.linkLen >= fastLinkMax:
		inv.sum.add(&inv.Blocks, 1)
	}
	if !hardlink && m.xattrs > inodeXattrSpace {
		inv.sum.add(&inv.Blocks, 1)
	}
	if inv.keep(name) {
		k := m.kind
		if hardlink {
			k = KindHardlink
		}
		inv.Boot[name] = BootEntry{Kind: k, Size: m.size, Link: link}
	}
	var b [8]byte
	inv.meta.Write([]byte(name))
	inv.meta.Write([]byte{0, byte(m.kind)})
	binary.LittleEndian.PutUint64(b[:], uint64(m.size))
	inv.meta.Write(b[:])
	inv.meta.Write([]byte(link))
	inv.meta.Write([]byte{0})
}

// addDir counts a directory's own blocks from its children's names.
func (inv *Inventory) addDir(children int64, nameBytes int64) {
	inv.sum.add(&inv.Blocks, dirBlocks(children, nameBytes))
}

// note records something to tell the user, once.
func (inv *Inventory) note(s string) {
	for _, n := range inv.Notes {
		if n == s {
			return
		}
	}
	if len(inv.Notes) < 32 {
		inv.Notes = append(inv.Notes, s)
	}
}

// done returns the inventory, or an error if a sum overflowed.
func (inv *Inventory) done() (*Inventory, error) {
	if inv.sum.overflow {
		return nil, fmt.Errorf("the image declares more data than any disk can hold")
	}
	return inv, nil
}

// MetaDigest is a digest of the final tree's names, kinds, sizes and links:
// known before any content is read, it seeds the ext4 directory hash.
func (inv *Inventory) MetaDigest() []byte { return inv.meta.Sum(nil) }

// maxBootEntries bounds the kernels and initramfs Boot keeps, whatever
// /boot holds.
const maxBootEntries = 512

// probePaths are files whose presence changes what assembly adds or which
// mode it picks.
var probePaths = map[string]bool{
	"usr/lib/systemd/systemd-growfs": true, "lib/systemd/systemd-growfs": true,
	"etc/systemd/system": true, "etc/repart.d": true,
	"etc/repart.d/50-c2vm-root.conf": true, "etc/systemd/system/c2vm-growfs.service": true,
	"etc/systemd/system/local-fs.target.wants": true, "etc/systemd/system/local-fs.target.wants/c2vm-growfs.service": true,
	"sbin/init": true, "usr/sbin/init": true, "lib/systemd/systemd": true, "usr/lib/systemd/systemd": true,
	"etc/os-release": true, "usr/lib/os-release": true,
	"etc/c2vm": true, "etc/c2vm/boot.env": true, // the boot settings system mode adds (exporter/bootenv.go)
	".c2vm": true, // where app mode puts c2vm's parts (exporter/appmode.go)
}

// stablePairs are the kernel and initramfs names distributions keep
// pointing at the newest kernel.
var stablePairs = [][2]string{{"vmlinuz", "initrd.img"}, {"boot/vmlinuz", "boot/initrd.img"}}

// keep decides whether Boot keeps an entry. The paths mode selection and
// first-boot set-up read are a fixed few, always kept. Kernels and
// initramfs, of which an image may hold any number, are kept up to
// maxBootEntries, but a versioned kernel whose initramfs Boot has is
// always kept: the walk is by name, so /boot's initramfs come before its
// kernels, and no number of kernels without one pushes out a pair.
func (inv *Inventory) keep(p string) bool {
	dir, base := path.Split(p)
	switch {
	case probePaths[p] || dir == "" && topLevel[base] || stableName(p):
		return true
	case dir != "" && dir != "boot/" || !kernelName(base):
		return false
	}
	if v, ok := strings.CutPrefix(p, "boot/vmlinuz-"); ok && inv.initrdFor(v) != "" {
		return true
	}
	if inv.kernels >= maxBootEntries {
		return false
	}
	inv.kernels++
	return true
}

func stableName(p string) bool {
	for _, pair := range stablePairs {
		if p == pair[0] || p == pair[1] {
			return true
		}
	}
	return false
}

// topLevel are the top-level names whose symlinks boot discovery follows.
var topLevel = map[string]bool{"boot": true, "lib": true, "lib32": true, "lib64": true, "libx32": true,
	"bin": true, "sbin": true, "usr": true, "etc": true}

func kernelName(base string) bool {
	return strings.HasPrefix(base, "vmlinuz") || strings.HasPrefix(base, "initrd") || strings.HasPrefix(base, "initramfs")
}

// Resolve follows symlinks among the boot entries to a regular file (or a
// hardlink to one), as GRUB follows them at boot.
func (inv *Inventory) Resolve(name string) (string, bool) { return inv.resolve(name) }

// resolve follows symlinks among the boot entries to a regular file.
func (inv *Inventory) resolve(name string) (string, bool) {
	for range 8 {
		e, ok := inv.Boot[name]
		if !ok {
			return "", false
		}
		switch e.Kind {
		case KindReg, KindHardlink:
			return name, true
		case KindSymlink:
			t := e.Link
			if !strings.HasPrefix(t, "/") {
				t = path.Join(path.Dir(name), t)
			}
			name = strings.TrimPrefix(path.Clean("/"+t), "/")
		default:
			return "", false
		}
	}
	return "", false
}

// Has reports whether the tree has a path, following a symlinked first
// component such as merged-/usr's /lib -> usr/lib. p is one of the paths
// Boot always keeps (probePaths, the top-level names).
func (inv *Inventory) Has(p string) bool {
	if _, ok := inv.Boot[p]; ok {
		return true
	}
	first, rest, ok := strings.Cut(p, "/")
	if e, found := inv.Boot[first]; ok && found && e.Kind == KindSymlink {
		_, ok := inv.Boot[strings.TrimPrefix(path.Clean("/"+path.Join(e.Link, rest)), "/")]
		return ok
	}
	return false
}

// IsDir reports whether p is a directory itself, following no symlink:
// one that files can be added to. p is one of the paths Boot always keeps.
func (inv *Inventory) IsDir(p string) bool {
	e, ok := inv.Boot[p]
	return ok && e.Kind == KindDir
}

// BootFiles is the kernel and initramfs a disk boots.
type BootFiles struct {
	// Stable are the distro's symlink pairs (kernel, initrd), tried in order at
	// boot so that a kernel upgraded inside the guest boots next time.
	Stable [][2]string
	// Kernel and Initrd are the newest versioned pair, the fallback; Version
	// is its version.
	Kernel, Initrd, Version string
}

// FindBoot picks the kernel and initramfs, or reports none.
func (inv *Inventory) FindBoot() (BootFiles, bool) {
	var bf BootFiles
	for _, p := range stablePairs {
		_, k := inv.resolve(p[0])
		_, i := inv.resolve(p[1])
		if k && i {
			bf.Stable = append(bf.Stable, p)
		}
	}
	var versions []string
	for name := range inv.Boot {
		if v, ok := strings.CutPrefix(name, "boot/vmlinuz-"); ok && validVersion(v) {
			if _, ok := inv.resolve(name); ok && inv.initrdFor(v) != "" {
				versions = append(versions, v)
			}
		}
	}
	sort.Slice(versions, func(i, j int) bool { return VersionLess(versions[i], versions[j]) })
	if n := len(versions); n > 0 {
		bf.Version = versions[n-1]
		bf.Kernel, bf.Initrd = "boot/vmlinuz-"+bf.Version, inv.initrdFor(bf.Version)
	}
	return bf, len(bf.Stable) > 0 || bf.Kernel != ""
}

// validVersion admits kernel version strings that are safe in a boot
// loader's configuration: letters, digits and . _ + ~ -.
func validVersion(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for _, c := range []byte(v) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+~-", c) >= 0) {
			return false
		}
	}
	return true
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

// VersionLess orders kernel versions like sort -V: runs of digits compare
// as numbers, other runs as text.
func VersionLess(a, b string) bool {
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
