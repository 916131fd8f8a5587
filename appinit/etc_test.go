package appinit

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestResolveInRootAndEtcTarget(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
	os.Symlink("/../../../../.."+outside+"/hosts", filepath.Join(root, "etc/hosts"))
	os.Symlink("/proc/sys/kernel/hostname", filepath.Join(root, "etc/hostname"))
	os.Symlink("loop2", filepath.Join(root, "etc/loop1"))
	os.Symlink("loop1", filepath.Join(root, "etc/loop2"))
	os.Symlink("/etc", filepath.Join(root, "etc/self"))
	os.Symlink(".", filepath.Join(root, "etc/dir"))

	if got, err := ResolveInRoot(root, "/etc/self/self/../etc/resolv.conf"); err != nil || got != "/run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("ResolveInRoot = %q, %v", got, err)
	}
	if _, err := ResolveInRoot(root, "/etc/loop1"); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("symlink loop: %v", err)
	}

	got, err := etcTarget(root, "resolv.conf")
	if err != nil || got != "/run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("resolv.conf: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(root, got)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("mount point file not created in the image: %v", err)
	}
	got, err = etcTarget(root, "hosts")
	if err != nil || got != outside+"/hosts" {
		t.Errorf("hosts: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "hosts")); err == nil {
		t.Error("an absolute symlink made a file outside the root")
	}
	if _, err := etcTarget(root, "hostname"); err == nil || !strings.Contains(err.Error(), "/proc") {
		t.Errorf("hostname into /proc: %v", err)
	}
	if _, err := etcTarget(root, "dir"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink to a directory: %v", err)
	}
}

func TestEtcFileContents(t *testing.T) {
	nc := &netConfig{addr: net.IPNet{IP: net.IPv4(10, 0, 2, 15).To4(), Mask: net.CIDRMask(24, 32)},
		dns: []net.IP{net.IPv4(10, 0, 2, 3), net.IPv4(1, 1, 1, 1), net.IPv4(8, 8, 8, 8), net.IPv4(9, 9, 9, 9)}, search: []string{"a.example", "b.example"}}
	rc := resolvConf(nc)
	if !strings.Contains(rc, "nameserver 10.0.2.3\n") || strings.Contains(rc, "9.9.9.9") || !strings.Contains(rc, "search a.example b.example\n") {
		t.Errorf("resolv.conf:\n%s", rc)
	}
	if rc := resolvConf(nil); strings.Contains(rc, "nameserver") {
		t.Errorf("resolv.conf without lease:\n%s", rc)
	}
	if h := hostsFile("web", nc); !strings.HasSuffix(h, "10.0.2.15\tweb\n") || !strings.HasPrefix(h, "127.0.0.1\tlocalhost\n") {
		t.Errorf("hosts:\n%s", h)
	}
	if h := hostsFile("web", nil); !strings.HasSuffix(h, "127.0.1.1\tweb\n") {
		t.Errorf("hosts without lease:\n%s", h)
	}
}

func TestMountPoint(t *testing.T) {
	dir := t.TempDir()
	if err := mountPoint(filepath.Join(dir, "proc")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/", filepath.Join(dir, "sys"))
	if err := mountPoint(filepath.Join(dir, "sys")); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlink mount point: %v", err)
	}
	if !hasGID([]byte(testGroup), 5) || hasGID([]byte("wheel:x:10:\n"), 5) {
		t.Error("hasGID")
	}
}

func TestRootDeviceHelpers(t *testing.T) {
	if v := cmdlineValue("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro root=UUID=abc quiet\n", "root"); v != "UUID=abc" {
		t.Errorf("cmdlineValue = %q", v)
	}
	const u = "0F1E2D3C-4b5a-6978-8796-a5b4c3d2e1f0"
	want, err := parseUUID(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"xyz", "0f1e2d3c", u + "00"} {
		if _, err := parseUUID(bad); err == nil {
			t.Errorf("parseUUID(%q) accepted", bad)
		}
	}
	sb := make([]byte, 1024)
	binary.LittleEndian.PutUint16(sb[sbMagicAt:], ext4SBMagic)
	copy(sb[sbUUIDAt:], want)
	if got, ok := superblockUUID(sb); !ok || string(got) != string(want) {
		t.Errorf("superblockUUID = %x, %v", got, ok)
	}
	if _, ok := superblockUUID(make([]byte, 1024)); ok {
		t.Error("a superblock without the magic has a UUID")
	}
	// The real thing, when mke2fs is there: a plain ext4 file, as in the boot tests.
	mke2fs, err := exec.LookPath("mke2fs")
	if err != nil {
		mke2fs, err = exec.LookPath("/usr/sbin/mke2fs")
	}
	if err != nil {
		if os.Getenv("C2VM_REQUIRE_TOOLS") != "" {
			t.Fatal("mke2fs is not installed (e2fsprogs)")
		}
		t.Skip("no mke2fs")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command(mke2fs, "-q", "-F", "-t", "ext4", "-U", u, img, "4M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if got, ok := ext4UUID(img); !ok || string(got) != string(want) {
		t.Errorf("ext4UUID = %x, %v", got, ok)
	}
}

func TestPowerButton(t *testing.T) {
	sys := t.TempDir()
	for dev, name := range map[string]string{"event0": "AT Translated Set 2 keyboard", "event1": "Power Button", "event2": "Sleep Button"} {
		os.MkdirAll(filepath.Join(sys, dev, "device"), 0o755)
		os.WriteFile(filepath.Join(sys, dev, "device/name"), []byte(name+"\n"), 0o644)
	}
	if got := powerButtons(sys); len(got) != 1 || got[0] != "/dev/input/event1" {
		t.Errorf("powerButtons = %q", got)
	}
	event := func(typ, code uint16, value int32) []byte {
		ev := make([]byte, inputEventSize)
		binary.NativeEndian.PutUint16(ev[16:], typ)
		binary.NativeEndian.PutUint16(ev[18:], code)
		binary.NativeEndian.PutUint32(ev[20:], uint32(value))
		return ev
	}
	r, w := io.Pipe()
	stop := make(chan struct{}, 1)
	go readPowerKey(r, stop)
	w.Write(event(evKey, keyPower, 0)) // a release alone is no press
	w.Write(event(0, 0, 0))            // EV_SYN
	select {
	case <-stop:
		t.Fatal("stop without a press")
	case <-time.After(50 * time.Millisecond):
	}
	w.Write(event(evKey, keyPower, 1))
	select {
	case <-stop:
	case <-time.After(5 * time.Second):
		t.Fatal("KEY_POWER press did not stop")
	}
	w.Close()
}
