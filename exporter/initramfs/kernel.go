// Package initramfs finds a Debian-style kernel and builds app mode's
// initramfs for it: the c2vm binary as /init (the appinit package), the
// kernel modules a VM on a common hypervisor needs to reach its disk, its
// network and its power button, and the order to load them in.
//
// Everything read from the kernel directory is input: paths are opened
// through an os.Root (no escape by symlink or ..), and every file read is
// bounded. The archive is byte-reproducible: the same kernel, binary and
// module list give the same bytes.
package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/internal/bounded"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Kernel is a kernel image with its modules, inside a directory laid out as
// a Debian system's root: boot/vmlinuz-VERSION and lib/modules/VERSION (or
// usr/lib/modules/VERSION). Paths are relative to Dir.
type Kernel struct {
	Dir        string // "/" or a --kernel-dir
	Version    string
	Image      string // boot/vmlinuz-VERSION
	ModulesDir string // lib/modules/VERSION or usr/lib/modules/VERSION
	Config     string // boot/config-VERSION, "" when absent
	// Logf receives notes such as modules this kernel lacks; nil drops them.
	Logf func(format string, args ...any)
}

// maxImageBytes bounds a kernel image; Debian's is about 8 MiB.
const maxImageBytes = 256 << 20

const kernelFix = "install a kernel (apt-get install linux-image-amd64), or pass --kernel-dir DIR holding " +
	"boot/vmlinuz-VERSION and lib/modules/VERSION (for example from dpkg -x linux-image-*.deb DIR)"

// FindKernel picks the newest kernel (in sort -V order) under root that has
// both an image and its modules.
func FindKernel(root string) (*Kernel, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("kernel directory: %v", err), kernelFix)
	}
	defer r.Close()
	images := map[string]string{}
	for _, name := range dirNames(r, "boot") {
		if v, ok := strings.CutPrefix(name, "vmlinuz-"); ok && validVersion(v) && isFile(r, "boot/"+name) {
			images[v] = "boot/" + name
		}
	}
	var versions, incomplete []string
	mods := map[string]string{}
	for _, dir := range []string{"lib/modules", "usr/lib/modules"} {
		for _, v := range dirNames(r, dir) {
			if _, seen := mods[v]; seen || !validVersion(v) || !hasModules(r, dir+"/"+v) {
				continue
			}
			mods[v] = dir + "/" + v
			if _, ok := images[v]; !ok && isFile(r, dir+"/"+v+"/vmlinuz") {
				images[v] = dir + "/" + v + "/vmlinuz" // Fedora and Arch keep it there
			}
		}
	}
	for v := range images {
		if _, ok := mods[v]; ok {
			versions = append(versions, v)
		} else {
			incomplete = append(incomplete, v)
		}
	}
	if len(versions) == 0 {
		return nil, noKernelError(root, images, incomplete)
	}
	sort.Slice(versions, func(i, j int) bool { return VersionLess(versions[i], versions[j]) })
	v := versions[len(versions)-1]
	k := &Kernel{Dir: root, Version: v, Image: images[v], ModulesDir: mods[v]}
	if isFile(r, "boot/config-"+v) {
		k.Config = "boot/config-" + v
	}
	return k, nil
}

func noKernelError(root string, images map[string]string, incomplete []string) error {
	if len(images) == 0 {
		return usererr.New(fmt.Sprintf("no kernel in %s: no boot/vmlinuz-VERSION", root), kernelFix)
	}
	sort.Strings(incomplete)
	return usererr.New(fmt.Sprintf("kernel %s in %s has no modules: no lib/modules/VERSION or usr/lib/modules/VERSION with kernel/ or modules.dep",
		strings.Join(incomplete, ", "), root), kernelFix)
}

// validVersion keeps a version usable as one path element.
func validVersion(v string) bool {
	return v != "" && v != "." && v != ".." && len(v) <= 200 && !strings.ContainsAny(v, "/\x00")
}

func dirNames(r *os.Root, dir string) []string {
	f, err := r.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(10000)
	return names
}

func isFile(r *os.Root, p string) bool {
	fi, err := r.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func hasModules(r *os.Root, dir string) bool {
	fi, err := r.Stat(dir + "/kernel")
	return isFile(r, dir+"/modules.dep") || err == nil && fi.IsDir()
}

// OpenImage opens the kernel image for copying, refusing one that is not a
// regular file or is implausibly large.
func (k *Kernel) OpenImage() (*os.File, error) {
	r, err := os.OpenRoot(k.Dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(k.Image)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxImageBytes) {
		err = fmt.Errorf("%s: not a regular file of at most %d MiB", k.Image, maxImageBytes>>20)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (k *Kernel) logf(format string, args ...any) {
	if k.Logf != nil {
		k.Logf(format, args...)
	}
}

// readBounded reads a file of the kernel directory, refusing more than max
// bytes. A missing file is fs.ErrNotExist.
func readBounded(r *os.Root, p string, max int64) ([]byte, error) {
	return bounded.ReadFile(r, p, max)
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// VersionLess orders versions as sort -V (and dpkg) do: digit runs compare
// as numbers, other runs by character with letters before other
// characters and '~' before everything, even the end.
func VersionLess(a, b string) bool { return verCmp(a, b) < 0 }

func verCmp(a, b string) int {
	for a != "" || b != "" {
		for a != "" && !isDigit(a[0]) || b != "" && !isDigit(b[0]) {
			ca, cb := order(a), order(b)
			if ca != cb {
				return ca - cb
			}
			a, b = a[min(1, len(a)):], b[min(1, len(b)):]
		}
		na, nb := strings.TrimLeft(digits(a), "0"), strings.TrimLeft(digits(b), "0")
		a, b = a[len(digits(a)):], b[len(digits(b)):]
		if len(na) != len(nb) {
			return len(na) - len(nb)
		}
		if c := strings.Compare(na, nb); c != 0 {
			return c
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) string {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i]
}

// order is dpkg's weight of the next character of a non-digit run: the end
// of the run (or string) is 0, '~' sorts first, letters before the rest.
func order(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z':
		return int(s[0])
	}
	return int(s[0]) + 256
}

// clean checks a module path from the kernel directory's index: relative,
// normal, no "..", so that it is also a safe name inside the archive.
func clean(p string) (string, bool) {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return "", false
	}
	return p, true
}
