package bootstrap

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// Guest configuration, as one layer of file operations after the install:
// what a container image lacks or carries that a machine must not.

// unit paths go through /lib, which merged-/usr systems link to /usr/lib.
var enable = [][2]string{
	{"/lib/systemd/system/systemd-networkd.service", "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"},
	{"/lib/systemd/system/systemd-networkd.socket", "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"},
	{"/lib/systemd/system/systemd-networkd-wait-online.service", "/etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service"},
	{"/lib/systemd/system/systemd-resolved.service", "/etc/systemd/system/sysinit.target.wants/systemd-resolved.service"},
	{"/lib/systemd/system/serial-getty@.service", "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"},
	{"/etc/systemd/system/c2vm-ssh-keygen.service", "/etc/systemd/system/sysinit.target.wants/c2vm-ssh-keygen.service"},
}

// enabled are the links to make on a guest of arch: the serial console's
// getty on the machine's own port, ttyS0 or arm64's PL011, ttyAMA0.
// systemd's getty generator adds one on every other console the kernel
// was given (such as ttyS0 on AWS Graviton).
func enabled(arch string) [][2]string {
	if arch != "arm64" {
		return enable
	}
	out := make([][2]string, len(enable))
	for i, e := range enable {
		out[i] = [2]string{e[0], strings.ReplaceAll(e[1], "@ttyS0.", "@ttyAMA0.")}
	}
	return out
}

// Guest says what the target already has, which decides what Configure
// may touch: an image that brings its own kernel and init keeps its own
// fstab, and gets systemd's network and console set-up only if it runs
// systemd.
type Guest struct {
	Systemd  bool // /lib/systemd/systemd is its init
	Resolved bool // systemd-resolved is installed: /etc/resolv.conf may point at its stub
	OwnBoot  bool // it brought its own kernel and init; c2vm installed nothing
}

// Configured is the configured target. When its guest-config step failed,
// the step still succeeds but leaves its error in StatusFile of Root (the
// frontend reads it and fails the build with that message); on success
// the file does not exist. The error lives in the root rather than in a
// mount of its own so that the step has one output, the one the disk is
// built from: a registry cache (mode=max) holds only outputs the final
// result reaches, and a second output read on its own would miss there
// and rerun the step on every cached build.
type Configured struct {
	Root llb.State
}

// Configure writes the guest configuration: files through BuildKit's file
// operations (which resolve paths inside the target), then c2vm's own
// guest-config step, run from the tools image over the target, for what
// needs code: removing baked SSH host keys, locking root or setting its
// password from a secret, adding a user and SSH keys — no tool of the
// image is used.
func Configure(st, tools llb.State, o Options, g Guest) Configured {
	hostname := o.Hostname
	if hostname == "" {
		hostname = "c2vm"
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
	rm := llb.WithAllowNotFound(true)
	fa := llb.Mkfile("/etc/hostname", 0o644, []byte(hostname+"\n")).
		Mkfile("/etc/hosts", 0o644, []byte(hosts)).
		// An empty machine-id: each VM makes its own at first boot, so
		// DHCP leases and journals differ between machines.
		Mkfile("/etc/machine-id", 0o444, nil).
		Rm("/var/lib/dbus/machine-id", rm).
		Rm("/.dockerenv", rm).
		Rm("/usr/sbin/policy-rc.d", rm)
	if !g.OwnBoot {
		fa = fa.Mkfile("/etc/fstab", 0o644, []byte(fstab))
	}
	if g.Resolved {
		fa = fa.Rm("/etc/resolv.conf", rm).
			Symlink("../run/systemd/resolve/stub-resolv.conf", "/etc/resolv.conf")
	}
	if g.Systemd {
		fa = fa.Mkdir("/etc/systemd/network", 0o755, llb.WithParents(true)).
			Mkfile("/etc/systemd/network/80-c2vm-dhcp.network", 0o644, []byte(dhcpNetwork)).
			Mkdir("/etc/systemd/system", 0o755, llb.WithParents(true)).
			Mkfile("/etc/systemd/system/c2vm-ssh-keygen.service", 0o644, []byte(sshKeygenUnit))
		for _, e := range enabled(o.Arch) {
			if !g.Resolved && strings.Contains(e[0], "resolved") {
				continue
			}
			fa = fa.Mkdir(path.Dir(e[1]), 0o755, llb.WithParents(true)).
				Rm(e[1], rm).
				Symlink(e[0], e[1])
		}
	}
	if o.Access.CloudInit {
		fa = addCloudConfig(fa)
	}
	st = st.File(fa, o.constraints("configure guest")...)
	return accountsStep(st, tools, o, false)
}

// accountsStep runs `c2vm guest-config` over the target. Root stays locked
// unless a secret gives its password hash (a build arg would land in the
// image's provenance). Secret contents are not part of BuildKit's cache key,
// so a step reading one never comes from cache: a changed hash, or another
// build with the same secret id, must not reuse an old layer. The step
// writes its error to a status file rather than failing, so that the
// frontend can report it as the build's error.
func accountsStep(st, tools llb.State, o Options, keysOnly bool) Configured {
	const target = "/target"
	args, opts, name, secret := guestConfigArgs(o)
	args = append([]string{"c2vm", "guest-config", "--root", target, "--status-file", target + StatusFile}, args...)
	if keysOnly {
		args, name = append(args, "--keys-only"), "install SSH keys for root"
	}
	if secret {
		opts = append(opts, llb.IgnoreCache)
	}
	for _, c := range o.constraints(name) {
		opts = append(opts, c)
	}
	opts = append(opts, llb.Args(args), llb.Network(llb.NetModeNone))
	run := tools.Run(opts...)
	return Configured{Root: run.AddMount(target, st)}
}

// AppModeKeys gives root of an app-mode image the SSH keys, for an image whose
// program is an SSH server; nothing else of the image changes.
func AppModeKeys(st, tools llb.State, o Options) Configured {
	o.RootPasswordSecret, o.Access.User, o.Access.UserPasswordSecret = "", "", ""
	return accountsStep(st, tools, o, true)
}

// StatusFile is the file in Configured.Root that holds guest-config's
// error; it exists only when the step failed.
const StatusFile = "/.c2vm-guest-config-error"
