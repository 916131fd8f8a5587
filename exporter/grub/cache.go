package grub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/owndir"
	"golang.org/x/sync/errgroup"
)

// GRUB's images depend only on the GRUB installation and on c2vm, so each
// is made once and kept in the user's cache directory (~/.cache/c2vm/grub),
// named by a digest of everything grub-mkimage reads to make it. Without a
// usable cache directory every assembly makes them; either way they are
// made while the source is scanned, not after the root filesystem is
// written.

// cacheVersion changes when c2vm asks grub-mkimage for something new that
// the digest would not see.
const cacheVersion = "c2vm grub image v1"

// maxImage bounds what is read from the cache: GRUB's EFI image is about
// 1 MiB, the BIOS one under 1 MiB by construction.
const maxImage = 16 << 20

// Start gets the image of each platform side by side; wait returns them by
// platform. scratch is a directory for grub-mkimage's files.
func Start(ctx context.Context, platforms []Platform, scratch string) (wait func() (map[Platform][]byte, error)) {
	imgs := make([][]byte, len(platforms))
	var g errgroup.Group
	for i, p := range platforms {
		g.Go(func() (err error) {
			imgs[i], err = Image(ctx, p, scratch)
			return err
		})
	}
	return func() (map[Platform][]byte, error) {
		if err := g.Wait(); err != nil {
			return nil, err
		}
		m := map[Platform][]byte{}
		for i, p := range platforms {
			m[p] = imgs[i]
		}
		return m, nil
	}
}

// Image returns a platform's image from the cache, or makes it and caches
// it. A cache that cannot be used only costs the time to make the image.
func Image(ctx context.Context, p Platform, scratch string) ([]byte, error) {
	lib, err := p.Dir()
	if err != nil {
		return nil, err
	}
	mkimage, err := lookTool("grub-mkimage")
	if err != nil {
		return nil, hosttools.Missing("grub-mkimage", err)
	}
	cached := ""
	cache, ok := openCache()
	if ok {
		defer cache.Close()
		if key, err := cacheKey(lib, mkimage, p); err == nil {
			cached = string(p) + "-" + key[:32] + ".img"
			if img := readCached(cache, cached); checkImage(p, img) == nil {
				return img, nil
			}
		}
	}
	img, err := makeImage(ctx, scratch, lib, p)
	if err != nil {
		return nil, err
	}
	if err := checkImage(p, img); err != nil {
		return nil, err
	}
	if cached != "" {
		writeCached(cache, cached, img)
	}
	return img, nil
}

// openCache opens the cache directory, ~/.cache/c2vm/grub (under
// $XDG_CACHE_HOME when set), made when missing, each directory checked as
// opened (internal/owndir); every later use goes through the handle.
func openCache() (*os.Root, bool) {
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, false
	}
	r, err := owndir.Open(base, true, "c2vm", "grub")
	return r, err == nil
}

// cacheKey digests what grub-mkimage reads to make a platform's image: the
// tool itself, its arguments (but the directory), the memdisk with the
// stub, the platform's boot images and module list, and the modules the
// image holds with those they depend on.
func cacheKey(lib, mkimage string, p Platform) (string, error) {
	mods, err := moduleClosure(filepath.Join(lib, "moddep.lst"), modules[p])
	if err != nil {
		return "", err
	}
	imgs, err := filepath.Glob(filepath.Join(lib, "*.img"))
	if err != nil {
		return "", err
	}
	files := append([]string{mkimage, filepath.Join(lib, "moddep.lst")}, imgs...)
	for _, m := range mods {
		files = append(files, filepath.Join(lib, m+".mod"))
	}
	memdisk, err := memdiskTar(Stub(p))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%q\x00%d\x00", cacheVersion, mkimageArgs(p), len(memdisk))
	h.Write(memdisk)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// moduleClosure returns, sorted, the modules named and every module they
// depend on, from GRUB's moddep.lst ("name: dep dep ...").
func moduleClosure(moddep string, names []string) ([]string, error) {
	data, err := os.ReadFile(moddep)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok {
			deps[name] = strings.Fields(rest)
		}
	}
	seen := map[string]bool{}
	todo := slices.Clone(names)
	for len(todo) > 0 {
		m := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[m] {
			continue
		}
		if _, ok := deps[m]; !ok {
			return nil, fmt.Errorf("module %s is not in %s", m, moddep)
		}
		seen[m] = true
		todo = append(todo, deps[m]...)
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	return out, nil
}

// readCached returns a cached image, or nil: the file is opened in the
// cache without following a link and checked as opened, a regular file of
// this user's with one name and a sane size.
func readCached(cache *os.Root, name string) []byte {
	f, err := cache.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > maxImage {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() || st.Nlink != 1 {
		return nil
	}
	img, err := io.ReadAll(io.LimitReader(f, maxImage))
	if err != nil || int64(len(img)) != fi.Size() {
		return nil
	}
	return img
}

// writeCached stores an image in the cache, synced and renamed into place,
// so a reader sees all of it or none, even after a crash. A failure leaves
// the cache as it was: the image is made again next time.
func writeCached(cache *os.Root, name string, img []byte) {
	owndir.WriteFile(cache, name, func(f *os.File) error {
		_, err := f.Write(img)
		return err
	})
}
