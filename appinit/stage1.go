package appinit

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// inInitramfs reports whether / is the kernel's rootfs (ramfs or tmpfs),
// that is whether stage 1 has to run.
func inInitramfs() bool {
	var st unix.Statfs_t
	if unix.Statfs("/", &st) != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// rootWait is how long stage 1 waits for the root device: USB and some
// SCSI controllers announce disks seconds after their driver loads.
const rootWait = 10 * time.Second

// stage1 takes the initramfs to the image's root filesystem.
func stage1(logf func(string, ...any)) error {
	for _, m := range []struct{ fs, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fs, m.dir, m.fs, unix.MS_NOSUID, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	spec := cmdlineValue(string(cmdline), "root")
	if spec == "" {
		return errors.New("no root= on the kernel command line")
	}
	loadModules(ModuleListPath, logf)
	dev, err := findRoot(spec, rootWait)
	if err != nil {
		return err
	}
	const newRoot = "/newroot"
	os.MkdirAll(newRoot, 0o755)
	if err := unix.Mount(dev, newRoot, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount root %s (%s): %w", dev, spec, err)
	}
	for _, d := range []string{"/dev", "/sys", "/proc"} {
		unix.Unmount(d, unix.MNT_DETACH) // stage 2 mounts its own, inside the image
	}
	freeInitramfs()
	return switchRoot(newRoot)
}

// switchRoot makes dir the root, as switch_root does: move its mount onto
// / and chroot into it. PID 1 just carries on there.
func switchRoot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// freeInitramfs deletes the initramfs's files, which would otherwise hold
// their memory until power-off (the modules are megabytes). It stays on the
// rootfs device; /init's pages live on while PID 1 maps them.
func freeInitramfs() {
	var st unix.Stat_t
	if unix.Lstat("/", &st) != nil {
		return
	}
	removeOnDev("/", st.Dev)
}

func removeOnDev(dir string, dev uint64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Dev != dev {
			continue
		}
		if e.IsDir() {
			removeOnDev(p, dev)
			unix.Rmdir(p)
		} else {
			unix.Unlink(p)
		}
	}
}

// cmdlineValue returns the last key=value of the kernel command line, as
// the kernel itself lets a later parameter win.
func cmdlineValue(cmdline, key string) string {
	v := ""
	for _, f := range strings.Fields(cmdline) {
		if val, ok := strings.CutPrefix(f, key+"="); ok {
			v = val
		}
	}
	return v
}

// loadModules loads the initramfs's modules in the host's order; a module
// whose dependency did not load is skipped rather than failing with
// "unknown symbol". EEXIST (already loaded) is success; ENODEV and ENXIO
// (no such hardware, e.g. Hyper-V drivers on QEMU) are silent failures.
func loadModules(list string, logf func(string, ...any)) {
	data, err := os.ReadFile(list)
	if err != nil {
		if !os.IsNotExist(err) {
			logf("modules: %v", err)
		}
		return
	}
	failed := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		mod, deps, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		mod = strings.TrimSpace(mod)
		for _, d := range strings.Fields(deps) {
			if failed[d] {
				failed[mod] = true
			}
		}
		if failed[mod] {
			continue
		}
		if err := loadModule("/" + mod); err != nil && err != unix.EEXIST {
			failed[mod] = true
			if err != unix.ENODEV && err != unix.ENXIO {
				logf("module %s: %v", filepath.Base(mod), err)
			}
		}
	}
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}

// findRoot waits for the device that root= names: UUID=<ext4 uuid> or a
// /dev path. It reads superblocks itself; there is no blkid here.
func findRoot(spec string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	uuidText, byUUID := strings.CutPrefix(spec, "UUID=")
	var uuid []byte
	if byUUID {
		var err error
		if uuid, err = parseUUID(uuidText); err != nil {
			return "", fmt.Errorf("root=%s: %w", spec, err)
		}
	}
	for {
		if !byUUID {
			if _, err := os.Stat(spec); err == nil {
				return spec, nil
			}
		} else if dev := deviceWithUUID(uuid); dev != "" {
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("root=%s: no such block device after %s (is the disk's driver in the initramfs? block devices: %s)", spec, wait, strings.Join(blockDevices(), " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func blockDevices() []string {
	entries, _ := os.ReadDir("/sys/class/block")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func deviceWithUUID(uuid []byte) string {
	for _, name := range blockDevices() {
		dev := "/dev/" + name
		if u, ok := ext4UUID(dev); ok && bytes.Equal(u, uuid) {
			return dev
		}
	}
	return ""
}

// Where an ext2/3/4 superblock keeps its magic and UUID.
const (
	sbOffset    = 1024
	sbMagicAt   = 0x38
	sbUUIDAt    = 0x68
	ext4SBMagic = 0xEF53
)

// ext4UUID reads the filesystem UUID from the superblock of dev.
func ext4UUID(dev string) ([]byte, bool) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, sbOffset); err != nil {
		return nil, false
	}
	return superblockUUID(sb)
}

func superblockUUID(sb []byte) ([]byte, bool) {
	if len(sb) < sbUUIDAt+16 || binary.LittleEndian.Uint16(sb[sbMagicAt:]) != ext4SBMagic {
		return nil, false
	}
	return sb[sbUUIDAt : sbUUIDAt+16], true
}

// parseUUID reads a UUID in its usual text form, in either case.
func parseUUID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("%q is not a UUID", s)
	}
	return b, nil
}
