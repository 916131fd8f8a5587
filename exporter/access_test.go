package exporter

import (
	"io"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/sshtest"
)

// written records what reaches the next sink.
type written struct {
	entries map[string]*rootfs.Entry
	data    map[string]string
	order   []string
}

func (w *written) Add(e *rootfs.Entry, r io.Reader) error {
	c := *e
	w.entries[e.Path], w.order = &c, append(w.order, e.Path)
	if r != nil {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if int64(len(b)) != e.DataBytes() {
			return io.ErrUnexpectedEOF
		}
		w.data[e.Path] = string(b)
	}
	return nil
}

type tentry struct {
	path string
	kind rootfs.Kind
	body string
	link string
}

// stream runs entries through an access sink and finishes it.
func stream(t *testing.T, a *Access, mode disk.Mode, entries []tentry) (*written, accessFound, error) {
	t.Helper()
	w := &written{entries: map[string]*rootfs.Entry{}, data: map[string]string{}}
	s, err := newAccessSink(w, a, mode)
	if err != nil {
		return w, accessFound{}, err
	}
	for _, te := range entries {
		e := &rootfs.Entry{Path: te.path, Kind: te.kind, Mode: 0o644, UID: 7, Link: te.link}
		var r io.Reader
		if te.kind == rootfs.KindReg {
			e.Size, r = int64(len(te.body)), strings.NewReader(te.body)
		}
		if err := s.Add(e, r); err != nil {
			return w, accessFound{}, err
		}
	}
	f, err := s.finish()
	return w, f, err
}

var debianEntries = []tentry{{"etc", rootfs.KindDir, "", ""}, {"etc/shadow", rootfs.KindReg, "daemon:*:1::\nroot:!:19000:0:99999:7:::\n", ""},
	{"etc/ssh", rootfs.KindDir, "", ""}, {"etc/ssh/sshd_config.d", rootfs.KindDir, "", ""}, {"root", rootfs.KindDir, "", ""},
	{"usr", rootfs.KindDir, "", ""}, {"usr/sbin", rootfs.KindDir, "", ""}, {"usr/sbin/sshd", rootfs.KindReg, "ELF", ""}}

func TestAccessSinkKeysAndPassword(t *testing.T) {
	key := sshtest.PublicKey(t, "t")
	old := []tentry{{"root/.ssh", rootfs.KindSymlink, "", "/etc"}, {"root/.ssh/authorized_keys", rootfs.KindReg, "ssh-rsa OLD\n", ""}}
	w, found, err := stream(t, &Access{AuthorizedKeys: []string{key}, RootPasswordHash: "$6$s$h"}, disk.ModeSystem, append(debianEntries, old...))
	if err != nil {
		t.Fatal(err)
	}
	if w.data["etc/shadow"] != "daemon:*:1::\nroot:$6$s$h:19000:0:99999:7:::\n" || w.entries["etc/shadow"].UID != 7 {
		t.Errorf("shadow %q", w.data["etc/shadow"])
	}
	if d := w.entries["root/.ssh"]; d.Kind != rootfs.KindDir || d.Mode != 0o700 || d.UID != 0 || d.Link != "" {
		t.Errorf("/root/.ssh %+v: the symlink was kept", d)
	}
	if f := w.entries["root/.ssh/authorized_keys"]; f.Mode != 0o600 || f.UID != 0 || w.data["root/.ssh/authorized_keys"] != string(accounts.AuthorizedKeysFile([]string{key})) {
		t.Errorf("authorized_keys %+v %q", f, w.data["root/.ssh/authorized_keys"])
	}
	if !strings.Contains(w.data[accounts.SSHDDropIn], "PermitRootLogin prohibit-password") {
		t.Errorf("no sshd drop-in: %v", w.order)
	}
	var m diskmeta.Meta
	found.describe(&m)
	if m.SSHUser != "root" || m.CloudInit {
		t.Errorf("meta %+v", m)
	}
}

// A tree without /root or .ssh gets them; app mode keeps the image's sshd
// settings and refuses a password.
func TestAccessSinkAddsMissing(t *testing.T) {
	key := sshtest.PublicKey(t, "t")
	w, _, err := stream(t, &Access{AuthorizedKeys: []string{key}}, disk.ModeApp, []tentry{{"usr", rootfs.KindDir, "", ""}, {"usr/sbin", rootfs.KindDir, "", ""},
		{"usr/sbin/sshd", rootfs.KindReg, "x", ""}, {"etc", rootfs.KindDir, "", ""}, {"etc/ssh", rootfs.KindDir, "", ""}, {"etc/ssh/sshd_config.d", rootfs.KindDir, "", ""}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(w.order[len(w.order)-3:], " ")
	if got != "root root/.ssh root/.ssh/authorized_keys" || w.entries["root"].Mode != 0o700 {
		t.Errorf("added %s", got)
	}
	if _, ok := w.entries[accounts.SSHDDropIn]; ok {
		t.Error("app mode: sshd settings changed")
	}
	if _, _, err := stream(t, &Access{RootPasswordHash: "$6$s$h"}, disk.ModeApp, nil); err == nil || !strings.Contains(err.Error(), "applies to system mode") {
		t.Errorf("password in app mode: %v", err)
	}
}

func TestAccessSinkRefuses(t *testing.T) {
	key := []string{sshtest.PublicKey(t, "t")}
	for name, c := range map[string]struct {
		a       Access
		entries []tentry
		want    string
	}{
		"no sshd":           {Access{AuthorizedKeys: key}, debianEntries[:5], "no OpenSSH server"},
		"no shadow":         {Access{RootPasswordHash: "$6$s$h"}, debianEntries[:1], "has no /etc/shadow"},
		"no root in shadow": {Access{RootPasswordHash: "$6$s$h"}, []tentry{{"etc/shadow", rootfs.KindReg, "daemon:*:1::\n", ""}}, "no root entry"},
		"shadow a symlink":  {Access{RootPasswordHash: "$6$s$h"}, []tentry{{"etc/shadow", rootfs.KindSymlink, "", "/host/shadow"}}, "is a symlink"},
		"root a symlink":    {Access{AuthorizedKeys: key}, []tentry{{"root", rootfs.KindSymlink, "", "/var/root"}}, "/root is a symlink"},
	} {
		if _, _, err := stream(t, &c.a, disk.ModeSystem, c.entries); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// Without options the tree passes unchanged, and what guest-config left
// (the login marker, cloud-init's configuration) is found for c2vm.json.
func TestAccessSinkFinds(t *testing.T) {
	entries := append(debianEntries, tentry{accounts.LoginMarker, rootfs.KindReg, "dev\n", ""}, tentry{accounts.CloudConfigPath, rootfs.KindReg, "x", ""},
		tentry{"root/.ssh/authorized_keys", rootfs.KindReg, "mine\n", ""})
	w, found, err := stream(t, nil, disk.ModeSystem, entries)
	if err != nil {
		t.Fatal(err)
	}
	if found.sshUser != "dev" || !found.cloudInit || w.data["root/.ssh/authorized_keys"] != "mine\n" || w.data[accounts.LoginMarker] != "dev\n" || len(w.order) != len(entries) {
		t.Errorf("found %+v, wrote %v", found, w.order)
	}
	_, found, _ = stream(t, nil, disk.ModeSystem, []tentry{{accounts.LoginMarker, rootfs.KindReg, "$(reboot)\n", ""}})
	if found.sshUser != "" {
		t.Errorf("marker %q taken", found.sshUser)
	}
}
