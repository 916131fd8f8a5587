package grub

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
)

func needTools(t *testing.T) {
	t.Helper()
	_, err := lookTool("grub-mkimage")
	for _, p := range []Platform{PC, AMD64EFI} {
		if err == nil {
			_, err = p.Dir()
		}
	}
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestBIOSConfigBounds: a core.img reaching the configuration, or a
// configuration larger than its area, is an error, not a broken disk.
func TestBIOSConfigBounds(t *testing.T) {
	needTools(t)
	l, err := disk.NewLayout(disk.BIOS, disk.AMD64, 64<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "d.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := InstallBIOS(f, l, make([]byte, biosCfgOffset+1), "x\n"); err == nil {
		t.Error("a core.img overlapping grub.cfg was installed")
	}
	if err := InstallBIOS(f, l, make([]byte, 4096), strings.Repeat("x", biosCfgSize)); err == nil {
		t.Error("a grub.cfg larger than its area was installed")
	}
	if err := InstallBIOS(f, l, make([]byte, 4096), "x\n"); err != nil {
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
	first, err := Image(context.Background(), PC, scratch)
	if err != nil || made.Load() != 1 {
		t.Fatalf("first image: %v, grub-mkimage ran %d times", err, made.Load())
	}
	again, err := Image(context.Background(), PC, scratch)
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
	if img, _ := Image(context.Background(), PC, scratch); !bytes.Equal(img, marked) {
		t.Fatalf("the cached image was not used")
	}
	// Not used, each making the image again: a link, a file with a second
	// name, a file that cannot be a core.img, a file of another user's,
	// a cache directory others may write.
	want := int32(1)
	refuse := func(what string) {
		t.Helper()
		want++
		if img, err := Image(context.Background(), PC, scratch); err != nil || !bytes.Equal(img, first) || made.Load() != want {
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
	lib, err := PC.Dir()
	if err != nil {
		t.Fatal(err)
	}
	mods, err := moduleClosure(filepath.Join(lib, "moddep.lst"), modules[PC])
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
		k, err := cacheKey(copyLib, mk, PC)
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
	cache, ok := openCache()
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
	if r, ok := openCache(); ok {
		r.Close()
		t.Error("a cache directory that is a link was used")
	}
}

func TestGrubConfigQuotes(t *testing.T) {
	bf := rootfs.BootFiles{Stable: [][2]string{{"vmlinuz", "initrd.img"}}, Kernel: "boot/vmlinuz-6.1.0-10-amd64", Initrd: "boot/initrd.img-6.1.0-10-amd64"}
	args, err := disk.ParseCmdline(`quiet foo="a b" it's $x;reboot`)
	if err != nil {
		t.Fatal(err)
	}
	// BIOS loads the kernel through its 16-bit entry, UEFI with linux.
	for _, c := range []struct {
		platform      Platform
		linux, initrd string
	}{{PC, "linux16", "initrd16"}, {AMD64EFI, "linux", "initrd"}} {
		cfg := Config{RootUUID: "u-u-i-d", Boot: bf, Cmdline: args, Follow: true}.Script(c.platform)
		for _, want := range []string{"search --no-floppy --fs-uuid --set=root 'u-u-i-d'",
			"load_env --skip-sig --file '/etc/c2vm/boot.env' c2vm_cmdline c2vm_menu\n",
			"if [ -f /vmlinuz -a -f /initrd.img ]", "elif [ -f /boot/vmlinuz -a -f /boot/initrd.img ]", "for c2vm_f in /boot/vmlinuz-*; do",
			c.linux + ` "$c2vm_k" 'root=UUID=u-u-i-d' 'rw' 'console=tty0' 'console=ttyS0,115200' 'quiet' 'foo="a b"' 'it'\''s' '$x;reboot' $c2vm_cmdline` + "\n",
			"\t" + c.initrd + " \"$c2vm_i\"\n", "menuentry 'Linux, previous kernel (c2vm)' {\n\tc2vm_pick_old\n"} {
			if !strings.Contains(cfg, want) {
				t.Errorf("%s grub.cfg lacks %q:\n%s", c.platform, want, cfg)
			}
		}
		// The versioned kernel found at assembly only breaks a tie: the
		// guest may remove it.
		if strings.Count(cfg, "6.1.0-10") != 1 || !strings.Contains(cfg, "set c2vm_built='/boot/vmlinuz-6.1.0-10-amd64'\n") {
			t.Errorf("%s grub.cfg names the kernel found at assembly other than as c2vm_built:\n%s", c.platform, cfg)
		}
		// Straight to the kernel: boot comes before any menu entry exists,
		// and the menu is kept for Shift, boot.env and a failed load.
		// The menu entry holds the commands themselves, to be edited.
		m := strings.Index(cfg, "menuentry ")
		if b := strings.Index(cfg, "\tboot\n"); b < 0 || m < b || !strings.Contains(cfg, "keystatus --shift") || !strings.Contains(cfg[m:], c.linux+` "$c2vm_k" `) {
			t.Errorf("%s grub.cfg does not boot before its menu, or its menu entry is not editable:\n%s", c.platform, cfg)
		}
	}
	// An app disk boots c2vm's kernel, and has no previous one.
	app := Config{RootUUID: "u", Boot: rootfs.BootFiles{Kernel: ".c2vm/vmlinuz", Initrd: ".c2vm/initrd.img"}}.Script(AMD64EFI)
	if !strings.Contains(app, "set c2vm_k='/.c2vm/vmlinuz'\n\tset c2vm_i='/.c2vm/initrd.img'\n") || strings.Contains(app, "previous") || strings.Contains(app, "vmlinuz-*") {
		t.Errorf("app grub.cfg:\n%s", app)
	}
}
