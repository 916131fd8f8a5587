package bootstrap

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/llbtest"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

const bookworm = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
`

const noble = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
VERSION_ID="24.04"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
`

const alpine = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
`

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		text, recipe string
	}{{bookworm, "debian"}, {noble, "ubuntu"}, {strings.Replace(noble, "24.04", "20.04", 2), "ubuntu"}} {
		r, err := For(ParseOSRelease([]byte(c.text)))
		if err != nil || r.Name() != c.recipe {
			t.Errorf("%q: %v %v", c.text, r, err)
		}
	}
	for _, text := range []string{alpine, strings.Replace(noble, "24.04", "18.04", 2), ""} {
		_, err := For(ParseOSRelease([]byte(text)))
		var ue *UnsupportedError
		if !errors.As(err, &ue) {
			t.Fatalf("%q accepted", text)
		}
		if !strings.Contains(err.Error(), "already holds a kernel") {
			t.Errorf("error says nothing to do: %v", err)
		}
	}
	_, err := For(ParseOSRelease([]byte(alpine)))
	if !strings.Contains(err.Error(), "Alpine Linux v3.20") {
		t.Errorf("error does not name the distribution: %v", err)
	}
}

func installExec(t *testing.T, text, arch string) *pb.ExecOp {
	r, err := For(ParseOSRelease([]byte(text)))
	if err != nil {
		t.Fatal(err)
	}
	st := r.Install(llb.Image("docker.io/library/x"), Options{Arch: arch})
	execs := llbtest.Execs(llbtest.Ops(t, st))
	if len(execs) != 1 {
		t.Fatalf("%d exec steps", len(execs))
	}
	return execs[0]
}

func TestInstallSteps(t *testing.T) {
	deb := installExec(t, bookworm, "amd64")
	script := strings.Join(deb.Meta.Args, " ")
	for _, want := range []string{"linux-image-amd64", "systemd-sysv", "initramfs-tools", "virtio_blk", "virtio_net"} {
		if !strings.Contains(script, want) {
			t.Errorf("debian install lacks %s", want)
		}
	}
	var caches []string
	for _, m := range deb.Mounts {
		if m.MountType == pb.MountType_CACHE {
			caches = append(caches, m.Dest)
			if m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
				t.Errorf("cache %s not locked", m.Dest)
			}
		}
	}
	if !slices.Equal(caches, []string{"/var/cache/apt", "/var/lib/apt/lists"}) {
		t.Errorf("package caches %v", caches)
	}
	if ub := strings.Join(installExec(t, noble, "amd64").Meta.Args, " "); !strings.Contains(ub, "linux-image-virtual") {
		t.Errorf("ubuntu kernel: %s", ub)
	}
	if arm := strings.Join(installExec(t, bookworm, "arm64").Meta.Args, " "); !strings.Contains(arm, "linux-image-arm64") {
		t.Errorf("arm64 kernel: %s", arm)
	}
}

func TestConfigure(t *testing.T) {
	ops := llbtest.Ops(t, Configure(llb.Image("docker.io/library/x"), Options{Hostname: "box1"}))
	files := map[string]string{}
	var removed, links []string
	for _, a := range llbtest.FileActions(ops) {
		switch {
		case a.GetMkfile() != nil:
			files[a.GetMkfile().Path] = string(a.GetMkfile().Data)
		case a.GetRm() != nil:
			removed = append(removed, a.GetRm().Path)
		case a.GetSymlink() != nil:
			links = append(links, a.GetSymlink().Newpath)
		}
	}
	if files["/etc/hostname"] != "box1\n" || !strings.Contains(files["/etc/hosts"], "127.0.1.1\tbox1") {
		t.Errorf("hostname not set: %q %q", files["/etc/hostname"], files["/etc/hosts"])
	}
	if v, ok := files["/etc/machine-id"]; !ok || v != "" {
		t.Errorf("machine-id not emptied: %q", v)
	}
	if !strings.Contains(files["/etc/systemd/network/80-c2vm-dhcp.network"], "Type=ether") {
		t.Error("no DHCP on every ethernet interface")
	}
	for _, p := range []string{"/.dockerenv", "/usr/sbin/policy-rc.d", "/var/lib/dbus/machine-id"} {
		if !slices.Contains(removed, p) {
			t.Errorf("%s not removed", p)
		}
	}
	for _, p := range []string{"/etc/resolv.conf", "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
		"/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"} {
		if !slices.Contains(links, p) {
			t.Errorf("%s not linked", p)
		}
	}
	lock := llbtest.Execs(ops)
	script := strings.Join(lock[0].Meta.Args, " ")
	if len(lock) != 1 || !strings.Contains(script, "usermod -p '!' root") || lock[0].Network != pb.NetMode_NONE {
		t.Errorf("root not locked: %+v", lock)
	}
	if !strings.Contains(script, "rm -f /etc/ssh/ssh_host_*_key") {
		t.Errorf("ssh host keys kept: %s", script)
	}
}

func TestRootPasswordFromSecret(t *testing.T) {
	ops := llbtest.Ops(t, Configure(llb.Image("docker.io/library/x"), Options{RootPasswordSecret: "rootpw"}))
	e := llbtest.Execs(ops)[0]
	var secret *pb.Mount
	for _, m := range e.Mounts {
		if m.MountType == pb.MountType_SECRET {
			secret = m
		}
	}
	if secret == nil || secret.SecretOpt.ID != "rootpw" || secret.SecretOpt.Optional {
		t.Fatalf("secret mount %+v", secret)
	}
	for _, env := range e.Meta.Env {
		if strings.Contains(env, "rootpw") {
			t.Errorf("secret id leaks into env: %s", env)
		}
	}
}
