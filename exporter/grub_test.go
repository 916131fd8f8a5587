package exporter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGrubConfigOnDisk reads a hybrid disk's grub.cfg where each image's
// stub reads it: the blocklist the BIOS stub names, and the ESP file next
// to BOOTX64.EFI. Both are the disk's configuration, naming its root.
func TestGrubConfigOnDisk(t *testing.T) {
	needTools(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	d := assembleT(t, layoutSource(t, kernelLayer().Bytes()), Options{})
	l := d.res.Layout

	m := regexp.MustCompile(`source "\(\$c2vm_disk,gpt(\d+)\)(\d+)\+(\d+)"`).FindStringSubmatch(grubStub("i386-pc"))
	if m == nil {
		t.Fatalf("the BIOS stub names no blocklist:\n%s", grubStub("i386-pc"))
	}
	part, _ := strconv.Atoi(m[1])
	first, _ := strconv.ParseInt(m[2], 10, 64)
	n, _ := strconv.ParseInt(m[3], 10, 64)
	if part != l.BIOSBoot.Num {
		t.Fatalf("the stub reads partition %d, the BIOS boot partition is %d", part, l.BIOSBoot.Num)
	}
	img, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	area := img[l.BIOSBoot.Start+first*sectorSize : l.BIOSBoot.Start+(first+n)*sectorSize]
	cfg := grubConfig("i386-pc", d.res.IDs.RootFS, d.res.Boot, nil, d.res.Mode == ModeSystem)
	if want := cfg + strings.Repeat("\n", len(area)-len(cfg)); string(area) != want || !strings.Contains(cfg, "'root=UUID="+d.res.IDs.RootFS+"'") {
		t.Fatalf("the BIOS stub's blocklist does not hold this disk's grub.cfg padded with newlines:\n%q", area[:min(len(area), 400)])
	}
	// GRUB 2.12 leaves $cmdpath empty under BIOS: the disk is then hd0.
	if !strings.Contains(grubStub("i386-pc"), "set c2vm_disk=hd0\nregexp --set=1:c2vm_disk ") {
		t.Errorf("the BIOS stub has no hd0 to fall back on:\n%s", grubStub("i386-pc"))
	}
	// core.img ends before the configuration.
	if bytes.Count(img[l.BIOSBoot.Start+first*sectorSize-sectorSize:l.BIOSBoot.Start+first*sectorSize], []byte{0}) != sectorSize {
		t.Error("the sector before grub.cfg is not empty: core.img reaches it")
	}

	cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", d.path, l.ESP.Start), "::/EFI/BOOT/grub.cfg")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype: %v\n%s", err, out)
	}
	// The same configuration, but for the kernel's entry.
	efi := strings.NewReplacer("\tlinux16 ", "\tlinux ", "\tinitrd16 ", "\tinitrd ").Replace(cfg)
	if efi != string(out) || strings.Contains(string(out), "16 ") ||
		!strings.Contains(cfg, "\t\tlinux16 ") || !strings.Contains(string(out), "\t\tlinux ") {
		t.Errorf("the ESP's grub.cfg is not the BIOS one with linux for linux16:\n%s\n---\n%s", out, cfg)
	}
	if !strings.Contains(grubStub("x86_64-efi"), `source "$cmdpath/grub.cfg"`) {
		t.Errorf("the EFI stub does not read grub.cfg beside the image:\n%s", grubStub("x86_64-efi"))
	}
}

// TestBIOSConfigBounds: a core.img reaching the configuration, or a
// configuration larger than its area, is an error, not a broken disk.
func TestBIOSConfigBounds(t *testing.T) {
	needTools(t)
	l, err := NewLayout(BIOS, 64<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "d.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := installBIOS(f, l, make([]byte, biosCfgOffset+1), "x\n"); err == nil {
		t.Error("a core.img overlapping grub.cfg was installed")
	}
	if err := installBIOS(f, l, make([]byte, 4096), strings.Repeat("x", biosCfgSize)); err == nil {
		t.Error("a grub.cfg larger than its area was installed")
	}
	if err := installBIOS(f, l, make([]byte, 4096), "x\n"); err != nil {
		t.Error(err)
	}
}

// TestGrubImageCache: the first assembly's images are made and kept; the
// next take them from the cache without running grub-mkimage; an image in
// the cache another user owns is not used.
func TestGrubImageCache(t *testing.T) {
	needTools(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	var made atomic.Int32
	runIn = func(ctx context.Context, dir string, stdin []byte, env []string, name string, args ...string) error {
		if name == "grub-mkimage" {
			made.Add(1)
		}
		return runReal(ctx, dir, stdin, env, name, args...)
	}
	t.Cleanup(func() { runIn = runReal })

	scratch := t.TempDir()
	first, err := grubImage(context.Background(), "i386-pc", scratch)
	if err != nil || made.Load() != 1 {
		t.Fatalf("first image: %v, grub-mkimage ran %d times", err, made.Load())
	}
	again, err := grubImage(context.Background(), "i386-pc", scratch)
	if err != nil || made.Load() != 1 || !bytes.Equal(first, again) {
		t.Fatalf("second image: %v, grub-mkimage ran %d times, same bytes: %v", err, made.Load(), bytes.Equal(first, again))
	}
	files, _ := filepath.Glob(filepath.Join(cache, "c2vm", "grub", "i386-pc-*.img"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	// What the cache holds is what is used.
	marked := append(bytes.Clone(first), "marked"...)
	if err := os.WriteFile(files[0], marked, 0o644); err != nil {
		t.Fatal(err)
	}
	if img, _ := grubImage(context.Background(), "i386-pc", scratch); !bytes.Equal(img, marked) {
		t.Fatalf("the cached image was not used")
	}
	// Not used, each making the image again: a link, a file with a second
	// name, a file that cannot be a core.img, a file of another user's,
	// a cache directory others may write.
	want := int32(1)
	refuse := func(what string) {
		t.Helper()
		want++
		if img, err := grubImage(context.Background(), "i386-pc", scratch); err != nil || !bytes.Equal(img, first) || made.Load() != want {
			t.Fatalf("%s: used (%v, grub-mkimage ran %d times, want %d)", what, err, made.Load(), want)
		}
	}
	planted := filepath.Join(t.TempDir(), "planted")
	writeImg := func(path string, b []byte) {
		t.Helper()
		os.Remove(path)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeImg(planted, first)
	os.Remove(files[0])
	if err := os.Symlink(planted, files[0]); err != nil {
		t.Fatal(err)
	}
	refuse("a symlink")
	os.Remove(files[0])
	if err := os.Link(planted, files[0]); err != nil {
		t.Fatal(err)
	}
	refuse("a hardlink")
	writeImg(files[0], []byte("short"))
	refuse("a 5-byte core.img")
	if err := os.Chmod(filepath.Dir(files[0]), 0o777); err != nil {
		t.Fatal(err)
	}
	writeImg(files[0], first)
	refuse("a world-writable cache directory")
	os.Chmod(filepath.Dir(files[0]), 0o700)
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chown(files[0], 1, 1); err != nil {
		t.Fatal(err)
	}
	refuse("an image another user owns")
}

var runReal = runIn

// TestGrubKey: the cache key follows the modules an image holds and those
// they depend on, and nothing else in GRUB's directory.
func TestGrubKey(t *testing.T) {
	needTools(t)
	lib, err := grubDir("i386-pc")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := moduleClosure(filepath.Join(lib, "moddep.lst"), grubModules["i386-pc"])
	if err != nil {
		t.Fatal(err)
	}
	// linux needs relocator, regexp needs extcmd: dependencies count.
	for _, m := range []string{"linux", "relocator", "regexp", "extcmd"} {
		if !slices.Contains(mods, m) {
			t.Errorf("closure lacks %s: %v", m, mods)
		}
	}
	if slices.Contains(mods, "xfs") {
		t.Errorf("closure holds xfs: %v", mods)
	}
	if _, err := moduleClosure(filepath.Join(lib, "moddep.lst"), []string{"nosuchmodule"}); err == nil {
		t.Error("an unknown module was accepted")
	}

	copyLib := t.TempDir()
	ents, err := os.ReadDir(lib)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(lib, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(copyLib, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk, err := lookTool("grub-mkimage")
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		k, err := grubKey(copyLib, mk, "i386-pc")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key()
	appendTo := func(name string) {
		f, err := os.OpenFile(filepath.Join(copyLib, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte{0})
		f.Close()
	}
	appendTo("xfs.mod")
	if key() != base {
		t.Error("a module the image does not hold changed the key")
	}
	appendTo("relocator.mod")
	if key() == base {
		t.Error("a dependency of linux changed and the key did not")
	}
}

// TestGrubCacheHandle: the cache is checked once and then used through the
// opened directory, so swapping a directory on the path after the check
// (another user's $HOME under sudo -E) redirects nothing; a linked
// directory on the path is not used at all.
func TestGrubCacheHandle(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", base)
	cache, ok := openGrubCache()
	if !ok {
		t.Fatal("a fresh cache directory was refused")
	}
	defer cache.Close()
	grub := filepath.Join(base, "c2vm", "grub")
	elsewhere := t.TempDir()
	if err := os.Rename(grub, grub+".checked"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, grub); err != nil {
		t.Fatal(err)
	}
	writeCached(cache, "x.img", []byte("image"))
	if b, err := os.ReadFile(filepath.Join(grub+".checked", "x.img")); err != nil || string(b) != "image" {
		t.Errorf("not written through the opened directory: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "x.img")); err == nil {
		t.Error("written where the swapped path points")
	}
	if got := readCached(cache, "x.img"); string(got) != "image" {
		t.Errorf("read back %q", got)
	}
	if r, ok := openGrubCache(); ok {
		r.Close()
		t.Error("a cache directory that is a link was used")
	}
}
