package appinit

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type mountSpec struct {
	src, dir, fstype string
	flags            uintptr
	data             string
}

// containerMounts are what a container runtime gives a container, plus
// /run and /tmp as tmpfs: the image's root is a disk here, and programs
// expect those two empty at start.
func containerMounts(ptsGID bool) []mountSpec {
	const nse = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	pts := "newinstance,ptmxmode=0666,mode=0620"
	if ptsGID {
		pts += ",gid=5"
	}
	return []mountSpec{
		{"proc", "/proc", "proc", nse, ""},
		{"sysfs", "/sys", "sysfs", nse, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, pts},
		{"shm", "/dev/shm", "tmpfs", nse, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nse, ""},
	}
}

// mountPoint makes sure dir is a directory of the image to mount on. A
// scratch image has none of them; the root is writable, so they are made.
// Like runc, a symlink or a file there is refused: mounting through it would
// put /proc wherever the image points.
func mountPoint(dir string) error {
	fi, err := os.Lstat(dir)
	if os.IsNotExist(err) {
		return os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot mount on %s: the image has a %s there, not a directory", dir, kind(fi.Mode()))
	}
	return nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// stage2Mounts mounts the container filesystems inside the image's root
// and the /dev links udev would make.
func stage2Mounts() error {
	group, _ := readIDFile("/etc/group")
	for _, m := range containerMounts(hasGID(group, 5)) {
		if err := mountPoint(m.dir); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	for link, target := range map[string]string{"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2", "/dev/core": "/proc/kcore"} {
		os.Symlink(target, link)
	}
	return nil
}

// setClock sets the system clock from the RTC unless the kernel already did
// (CONFIG_RTC_HCTOSYS with a built-in RTC driver, as on Debian). The RTC of
// a VM keeps UTC.
func setClock(logf func(string, ...any)) {
	if b, err := os.ReadFile("/sys/class/rtc/rtc0/hctosys"); err == nil && strings.TrimSpace(string(b)) == "1" {
		return
	}
	f, err := os.Open("/dev/rtc0")
	if err != nil {
		return // no RTC: nothing better than the kernel's idea of time
	}
	defer f.Close()
	rt, err := unix.IoctlGetRTCTime(int(f.Fd()))
	if err != nil {
		logf("rtc: %v", err)
		return
	}
	t := time.Date(int(rt.Year)+1900, time.Month(rt.Mon+1), int(rt.Mday), int(rt.Hour), int(rt.Min), int(rt.Sec), 0, time.UTC)
	if t.Year() < 2000 {
		return
	}
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		logf("set clock from rtc: %v", err)
	}
}
