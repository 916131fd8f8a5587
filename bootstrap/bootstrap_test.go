package bootstrap

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	for _, want := range []string{"linux-image-amd64", "systemd-sysv", "initramfs-tools", "virtio_blk", "nvme", "hv_storvsc", "vmw_pvscsi", "MODULES=list", "COMPRESS=%s", " zstd "} {
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

var tools = llb.Image("127.0.0.1:5000/c2vm:dev")

func configured(t *testing.T, o Options, g Guest) []*pb.Op {
	return llbtest.Ops(t, Configure(llb.Image("docker.io/library/x"), tools, o, g).Root)
}

func fileOps(ops []*pb.Op) (files map[string]string, removed, links []string) {
	files = map[string]string{}
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
	return files, removed, links
}

func TestConfigure(t *testing.T) {
	ops := configured(t, Options{Hostname: "box1"}, Guest{Systemd: true, Resolved: true})
	files, removed, links := fileOps(ops)
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
	execs := llbtest.Execs(ops)
	if len(execs) != 1 || strings.Join(execs[0].Meta.Args, " ") != "c2vm guest-config --root /target --status-file /target/.c2vm-guest-config-error" || execs[0].Network != pb.NetMode_NONE {
		t.Fatalf("root not locked by c2vm's own step: %+v", execs)
	}
	if len(llbtest.IgnoreCache(t, Configure(llb.Image("docker.io/library/x"), tools, Options{}, Guest{}).Root)) != 0 {
		t.Error("locking root never comes from cache; it need not re-run")
	}
}

// An image with its own kernel and init keeps its fstab; without systemd
// it gets no units, without systemd-resolved its resolv.conf stays.
func TestConfigureOwnBoot(t *testing.T) {
	files, _, links := fileOps(configured(t, Options{Hostname: "h"}, Guest{OwnBoot: true}))
	if _, ok := files["/etc/fstab"]; ok {
		t.Error("fstab replaced on an image that brought its own boot")
	}
	if len(links) != 0 || files["/etc/hostname"] != "h\n" {
		t.Errorf("links %v, hostname %q", links, files["/etc/hostname"])
	}
}

func TestRootPasswordFromSecret(t *testing.T) {
	st := Configure(llb.Image("docker.io/library/x"), tools, Options{RootPasswordSecret: "rootpw"}, Guest{}).Root
	e := llbtest.Execs(llbtest.Ops(t, st))[0]
	var secret *pb.Mount
	for _, m := range e.Mounts {
		if m.MountType == pb.MountType_SECRET {
			secret = m
		}
	}
	// Optional: guest-config then names the missing --secret.
	if secret == nil || secret.SecretOpt.ID != "rootpw" || !secret.SecretOpt.Optional || secret.Dest != "/run/c2vm-secrets/root-password" {
		t.Fatalf("secret mount %+v", secret)
	}
	if !slices.Contains(e.Meta.Args, "--root-password-secret") {
		t.Errorf("args %v", e.Meta.Args)
	}
	for _, env := range e.Meta.Env {
		if strings.Contains(env, "rootpw") {
			t.Errorf("secret id leaks into env: %s", env)
		}
	}
	// Secret contents are not in the cache key: this step must never be
	// served from cache.
	if ic := llbtest.IgnoreCache(t, st); len(ic) != 1 || ic[0] != e && !slices.Contains(ic[0].Meta.Args, "--root-password-secret") {
		t.Errorf("the root password step can come from cache: %d ops ignore it", len(ic))
	}
}

// The install script's checks for a kernel and an initramfs hold with two
// kernels in /boot (a glob under test -e made dash fail) and fail with none.
func TestInstallChecksWithTwoKernels(t *testing.T) {
	var checks []string
	for _, l := range strings.Split(debian{}.installScript("amd64", nil, ""), "\n") {
		if strings.Contains(l, "/boot/vmlinuz-*") || strings.Contains(l, "/boot/initrd.img-*") {
			checks = append(checks, l)
		}
	}
	if len(checks) != 2 {
		t.Fatalf("checks: %q", checks)
	}
	run := func(files ...string) error {
		dir := t.TempDir()
		for _, f := range files {
			os.WriteFile(filepath.Join(dir, f), nil, 0o644)
		}
		script := strings.ReplaceAll(strings.Join(checks, "\n"), "/boot/", dir+"/")
		return exec.Command("/bin/sh", "-c", "set -eu\n"+script).Run()
	}
	if err := run("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64", "initrd.img-6.1.0-9-amd64", "initrd.img-6.1.0-10-amd64"); err != nil {
		t.Errorf("two kernels: %v", err)
	}
	if err := run("initrd.img-6.1.0-9-amd64"); err == nil {
		t.Error("no kernel passed the check")
	}
}

// The install runs as root in /, whatever USER and WORKDIR the image ended
// with.
func TestInstallAsRoot(t *testing.T) {
	r, _ := For(ParseOSRelease([]byte(bookworm)))
	st := r.Install(llb.Image("docker.io/library/x").User("web").Dir("/home/web"), Options{Arch: "amd64"})
	e := llbtest.Execs(llbtest.Ops(t, st))[0]
	if e.Meta.User != "root" || e.Meta.Cwd != "/" {
		t.Errorf("install runs as %q in %q", e.Meta.User, e.Meta.Cwd)
	}
}

// The access options add what a minimal image lacks to the install step:
// an SSH server for keys, sudo for a user, cloud-init with both.
func TestAccessPackages(t *testing.T) {
	for _, c := range []struct {
		a          Access
		want, lack []string
	}{
		{Access{}, nil, []string{"openssh-server", "sudo", "cloud-init"}},
		{Access{AuthorizedKeys: []string{"ssh-ed25519 AAAA"}}, []string{"openssh-server"}, []string{"sudo", "cloud-init"}},
		{Access{KeysSecret: "keys", User: "dev"}, []string{"openssh-server", "sudo"}, []string{"cloud-init"}},
		{Access{CloudInit: true}, []string{"cloud-init", "openssh-server", "sudo"}, nil},
	} {
		r, _ := For(ParseOSRelease([]byte(bookworm)))
		e := llbtest.Execs(llbtest.Ops(t, r.Install(llb.Image("docker.io/library/x"), Options{Arch: "amd64", Access: c.a})))[0]
		install := ""
		for _, l := range strings.Split(e.Meta.Args[2], "\n") {
			if strings.Contains(l, "apt-get install") {
				install = l
			}
		}
		for _, p := range c.want {
			if !strings.Contains(install, " "+p) {
				t.Errorf("%+v: %s not installed: %s", c.a, p, install)
			}
		}
		for _, p := range c.lack {
			if strings.Contains(install, p) {
				t.Errorf("%+v: %s installed", c.a, p)
			}
		}
	}
}

// Keys from a build arg reach guest-config as a file mounted from a
// scratch state (content-addressed, so other keys re-run the step); a
// user, its password and key secrets become optional secret mounts and
// the step never comes from cache.
func TestAccessStep(t *testing.T) {
	o := Options{Access: Access{AuthorizedKeys: []string{"ssh-ed25519 AAAA a", "ssh-rsa BBBB"}, KeysSecret: "team-keys",
		User: "dev:1500", UserPasswordSecret: "devpw", SudoNoPasswd: true, CloudInit: true}}
	c := Configure(llb.Image("docker.io/library/x"), tools, o, Guest{Systemd: true})
	ops := llbtest.Ops(t, c.Root)
	e := llbtest.Execs(ops)[0]
	args := strings.Join(e.Meta.Args, " ")
	want := "c2vm guest-config --root /target --status-file /target/.c2vm-guest-config-error --user dev:1500 --sudo-nopasswd --user-password-secret devpw " +
		"--authorized-keys-file /c2vm-keys/authorized_keys --authorized-keys-secret team-keys"
	if args != want {
		t.Errorf("args\n%s\nwant\n%s", args, want)
	}
	secrets := map[string]string{}
	for _, m := range e.Mounts {
		if m.MountType == pb.MountType_SECRET {
			if !m.SecretOpt.Optional {
				t.Errorf("secret %s is required", m.SecretOpt.ID)
			}
			secrets[m.Dest] = m.SecretOpt.ID
		}
	}
	if secrets["/run/c2vm-secrets/user-password"] != "devpw" || secrets["/run/c2vm-secrets/authorized-keys"] != "team-keys" || len(secrets) != 2 {
		t.Errorf("secret mounts %v", secrets)
	}
	files, _, _ := fileOps(ops)
	if files["/authorized_keys"] != "ssh-ed25519 AAAA a\nssh-rsa BBBB\n" || !strings.Contains(files[CloudConfigPath], "datasource_list: [ NoCloud, ConfigDrive, Ec2, GCE, Azure, OpenStack ]") {
		t.Errorf("files %q", files)
	}
	if len(llbtest.IgnoreCache(t, c.Root)) != 1 {
		t.Error("a step reading secrets can come from cache")
	}
	app := llbtest.Execs(llbtest.Ops(t, AppModeKeys(llb.Image("docker.io/library/x"), tools, o).Root))[0]
	if a := strings.Join(app.Meta.Args, " "); !strings.HasSuffix(a, "--keys-only") || strings.Contains(a, "--user") {
		t.Errorf("app mode keys: %s", a)
	}
}

// With SOURCE_DATE_EPOCH the install puts back the logs it writes: a log
// the image had is as it was, one it did not have is gone.
func TestInstallKeepsRunLogs(t *testing.T) {
	dir := t.TempDir()
	script := debian{}.installScript("amd64", nil, "1700000000")
	if !strings.Contains(script, "saved=$(mktemp -d)") || strings.Contains(debian{}.installScript("amd64", nil, ""), "saved=") {
		t.Fatal("the logs are kept with SOURCE_DATE_EPOCH only")
	}
	before, after := keepRunLogs()
	in := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, " /var/", " "+dir+"/var/"), "\"/var/", "\""+dir+"/var/")
	}
	os.MkdirAll(filepath.Join(dir, "var/log/apt"), 0o755)
	os.WriteFile(filepath.Join(dir, "var/log/dpkg.log"), []byte("the image's\n"), 0o644)
	install := "echo installed >>" + dir + "/var/log/dpkg.log; echo new >" + dir + "/var/log/apt/history.log"
	if out, err := exec.Command("/bin/sh", "-c", "set -eu\n"+in(before)+"\n"+install+"\n"+in(after)).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "var/log/dpkg.log")); string(b) != "the image's\n" {
		t.Errorf("dpkg.log: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "var/log/apt/history.log")); !os.IsNotExist(err) {
		t.Errorf("history.log, which the image did not have: %v", err)
	}
}
