package appinit

import (
	"fmt"
	"net"
	"os"
	"path"
	"strings"

	"github.com/c2vm/c2vm/internal/chroot"
	"golang.org/x/sys/unix"
)

// ResolveInRoot resolves the absolute path p inside an image whose "/" is
// root on this side, as the kernel does in a chroot (internal/chroot).
// Components from the first missing one on are kept as written. The result
// is a path inside the image.
func ResolveInRoot(root, p string) (string, error) {
	return chroot.Resolve(p, func(q string) (string, bool, error) {
		fi, err := os.Lstat(inRoot(root, q))
		switch {
		case os.IsNotExist(err):
			return "", false, chroot.ErrNotExist
		case err != nil:
			return "", false, err
		case fi.Mode()&os.ModeSymlink == 0:
			return "", false, nil
		}
		target, err := os.Readlink(inRoot(root, q))
		return target, err == nil, err
	}, true)
}

// etcTarget decides where /etc/<name> of the image is overmounted. Like
// runc, a symlink is followed, but only inside the image (the init is
// chrooted, and ResolveInRoot never leaves root), and a missing target is
// created with its directories: /etc/resolv.conf ->
// ../run/systemd/resolve/stub-resolv.conf then gets c2vm's file on the
// fresh /run. A target that is not a regular file, or that lies on the
// kernel's /proc, /sys or /dev, is left alone: the program sees the image's
// entry and the console says so.
func etcTarget(root, name string) (string, error) {
	target, err := ResolveInRoot(root, "/etc/"+name)
	if err != nil {
		return "", err
	}
	for _, k := range []string{"/proc", "/sys", "/dev"} {
		if target == k || strings.HasPrefix(target, k+"/") {
			return "", fmt.Errorf("/etc/%s leads to %s, on the kernel's %s: left as the image has it", name, target, k)
		}
	}
	fi, err := os.Lstat(inRoot(root, target))
	switch {
	case os.IsNotExist(err):
		if err := os.MkdirAll(inRoot(root, path.Dir(target)), 0o755); err != nil {
			return "", err
		}
		f, err := os.OpenFile(inRoot(root, target), os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return "", err
		}
		return target, f.Close()
	case err != nil:
		return "", err
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("/etc/%s leads to %s, which is not a regular file: left as the image has it", name, target)
	}
	return target, nil
}

// runDir holds the files bind-mounted over the image's, as Docker keeps
// them outside the container's filesystem.
const runDir = "/run/c2vm"

// installEtcFiles writes resolv.conf, hosts and hostname under runDir and
// bind-mounts each over the image's /etc file.
func installEtcFiles(hostname string, nc *netConfig, logf func(string, ...any)) {
	files := []struct{ name, content string }{
		{"resolv.conf", resolvConf(nc)},
		{"hosts", hostsFile(hostname, nc)},
		{"hostname", hostname + "\n"},
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		logf("%s: %v", runDir, err)
		return
	}
	for _, f := range files {
		src := path.Join(runDir, f.name)
		if err := os.WriteFile(src, []byte(f.content), 0o644); err != nil {
			logf("%s: %v", src, err)
			continue
		}
		target, err := etcTarget("/", f.name)
		if err == nil {
			err = unix.Mount(src, target, "", unix.MS_BIND, "")
		}
		if err != nil {
			logf("/etc/%s: %v", f.name, err)
		}
	}
}

// resolvConf lists DHCP's servers (the resolver reads three at most) and
// search domains. Without a lease there is no server to name.
func resolvConf(nc *netConfig) string {
	if nc == nil || len(nc.dns) == 0 {
		return "# c2vm: no DNS server (no DHCP lease)\n"
	}
	var b strings.Builder
	b.WriteString("# c2vm: from DHCP\n")
	for i, ip := range nc.dns {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	if len(nc.search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(nc.search, " "))
	}
	return b.String()
}

// hostsFile is Docker's /etc/hosts: loopback names, the IPv6 multicast
// names, and the hostname on the VM's address (127.0.1.1 without one, as
// Debian does).
func hostsFile(hostname string, nc *netConfig) string {
	ip := net.IPv4(127, 0, 1, 1)
	if nc != nil {
		ip = nc.addr.IP
	}
	return "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n" +
		ip.String() + "\t" + hostname + "\n"
}
