package exporter

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Access is a way into a disk c2vm assemble writes: root's SSH keys and
// password hash (--ssh-authorized-keys, --root-password-file), applied to
// the filesystem stream as it passes, since assemble never extracts the
// tree. Both are checked before assembly starts (accounts.ParseAuthorizedKeys,
// accounts.CheckHash).
type Access struct {
	AuthorizedKeys   []string // root's, replacing any /root/.ssh/authorized_keys
	RootPasswordHash string   // root's field in /etc/shadow
}

// Paths the access sink watches.
const (
	shadowPath   = "etc/shadow"
	rootSSHDir   = "root/.ssh"
	rootKeysPath = "root/.ssh/authorized_keys"
	sshdDropDir  = "etc/ssh/sshd_config.d"
)

// sshdPaths are where a tree's OpenSSH server may be.
var sshdPaths = map[string]bool{"usr/sbin/sshd": true, "sbin/sshd": true, "usr/bin/sshd": true}

// accessFound is what the tree says about getting in, for c2vm.json.
type accessFound struct {
	sshUser   string // whom c2vm gave SSH keys: accounts.LoginMarker, or root
	cloudInit bool   // c2vm's cloud-init configuration is there
}

// describe adds what was found to the disk's metadata.
func (f accessFound) describe(m *diskmeta.Meta) {
	m.SSHUser, m.CloudInit = f.sshUser, f.cloudInit
}

// accessSink passes the tree on to next, replacing /etc/shadow's root line
// and root's authorized_keys on the way and adding what is missing at the
// end; it notes what c2vm.json records whether or not anything is applied.
type accessSink struct {
	next  rootfs.Sink
	a     Access
	app   bool // app mode: keys only, the image's sshd settings stay
	seen  map[string]bool
	sshd  bool // the tree has an OpenSSH server
	set   bool // root's password was set
	found accessFound
}

func newAccessSink(next rootfs.Sink, a *Access, mode disk.Mode) (*accessSink, error) {
	s := &accessSink{next: next, app: mode == disk.ModeApp, seen: map[string]bool{}}
	if a != nil {
		s.a = *a
	}
	if s.app && s.a.RootPasswordHash != "" {
		return nil, usererr.New("--root-password-file applies to system mode; in app mode no one logs in, c2vm's init runs the image's program",
			"drop the flag, or assemble a tree with its own kernel and init (--mode system)")

	}
	return s, nil
}

// Add implements rootfs.Sink.
func (s *accessSink) Add(e *rootfs.Entry, data io.Reader) error {
	switch {
	case e.Path == accounts.LoginMarker && e.Kind == rootfs.KindReg && e.Data == nil && e.Size <= 64:
		return s.readMarker(e, data)
	case e.Path == accounts.CloudConfigPath:
		s.found.cloudInit = true
	case sshdPaths[e.Path]:
		s.sshd = true
	}
	s.seen[e.Path] = true
	switch {
	case e.Path == shadowPath && s.a.RootPasswordHash != "":
		return s.rewriteShadow(e, data)
	case len(s.a.AuthorizedKeys) == 0:
	case e.Path == "root" && e.Kind != rootfs.KindDir:
		return fmt.Errorf("the image's /root is a %s, not a directory: c2vm cannot put root's SSH keys in it", e.Kind)
	case e.Path == rootSSHDir:
		return s.replace(e, data, s.dir(rootSSHDir, 0o700), nil)
	case e.Path == rootKeysPath:
		return s.replace(e, data, s.file(rootKeysPath, 0o600), accounts.AuthorizedKeysFile(s.a.AuthorizedKeys))
	case e.Path == accounts.SSHDDropIn && !s.app:
		return s.replace(e, data, s.file(accounts.SSHDDropIn, 0o644), []byte(accounts.SSHDConfig(s.a.RootPasswordHash != "")))
	}
	return s.next.Add(e, data)
}

// readMarker reads accounts.LoginMarker, which guest-config wrote in a build
// step: c2vm.json says whom to ssh as.
func (s *accessSink) readMarker(e *rootfs.Entry, data io.Reader) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	if name := strings.TrimSpace(string(b)); accounts.LoginName(name) {
		s.found.sshUser = name
	}
	s.seen[e.Path] = true
	return s.next.Add(e, bytes.NewReader(b))
}

// rewriteShadow sets root's password field.
func (s *accessSink) rewriteShadow(e *rootfs.Entry, data io.Reader) error {
	if e.Kind != rootfs.KindReg || e.Data != nil || e.Size > 16<<20 {
		return fmt.Errorf("the image's /etc/shadow is a %s (or sparse, or over 16 MiB): c2vm cannot set root's password in it", e.Kind)
	}
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	out, ok := accounts.SetRootPassword(b, s.a.RootPasswordHash)
	if !ok {
		return usererr.New("the image's /etc/shadow has no root entry: --root-password-file cannot set root's password",
			"add root to /etc/shadow in the image (pwconv makes one), or drop --root-password-file")

	}
	c := *e
	c.Size = int64(len(out))
	s.set = true
	return s.next.Add(&c, bytes.NewReader(out))
}

// replace puts c2vm's entry where the image had one, whatever its kind (a
// symlink is replaced, never followed); the image's data is drained.
func (s *accessSink) replace(e *rootfs.Entry, data io.Reader, mine *rootfs.Entry, body []byte) error {
	if data != nil {
		if _, err := io.Copy(io.Discard, data); err != nil {
			return err
		}
	}
	if mine.Kind != rootfs.KindReg {
		return s.next.Add(mine, nil)
	}
	mine.Size = int64(len(body))
	return s.next.Add(mine, bytes.NewReader(body))
}

func (s *accessSink) dir(p string, mode uint32) *rootfs.Entry {
	return &rootfs.Entry{Path: p, Kind: rootfs.KindDir, Mode: mode, Mtime: time.Unix(0, 0)}
}

func (s *accessSink) file(p string, mode uint32) *rootfs.Entry {
	return &rootfs.Entry{Path: p, Kind: rootfs.KindReg, Mode: mode, Mtime: time.Unix(0, 0)}
}

// finish adds what the tree lacked and fails when an option could not be
// applied; it returns what c2vm.json records.
func (s *accessSink) finish() (accessFound, error) {
	if s.a.RootPasswordHash != "" && !s.set {
		return s.found, usererr.New("the image has no /etc/shadow: --root-password-file cannot set root's password",
			"use an image with shadow passwords (Debian and Ubuntu have them), or drop --root-password-file")

	}
	keys := s.a.AuthorizedKeys
	if len(keys) == 0 {
		return s.found, nil
	}
	if !s.sshd {
		return s.found, usererr.New("--ssh-authorized-keys: the image has no OpenSSH server (/usr/sbin/sshd), so the keys would let no one in",
			"install openssh-server in the image, or drop --ssh-authorized-keys")

	}
	var extra []*rootfs.Entry
	if !s.seen["root"] {
		extra = append(extra, s.dir("root", 0o700))
	}
	if !s.seen[rootSSHDir] {
		extra = append(extra, s.dir(rootSSHDir, 0o700))
	}
	if !s.seen[rootKeysPath] {
		extra = append(extra, s.file(rootKeysPath, 0o600))
	}
	for _, e := range extra {
		var body io.Reader
		if e.Kind == rootfs.KindReg {
			b := accounts.AuthorizedKeysFile(keys)
			e.Size, body = int64(len(b)), bytes.NewReader(b)
		}
		if err := s.next.Add(e, body); err != nil {
			return s.found, err
		}
	}
	if err := s.addDropIn(); err != nil {
		return s.found, err
	}
	if s.found.sshUser == "" {
		s.found.sshUser = "root"
	}
	return s.found, nil
}

// addDropIn writes c2vm's sshd settings where the image's sshd reads
// drop-ins (system mode; an app's sshd settings are its own).
func (s *accessSink) addDropIn() error {
	if s.app || !s.seen[sshdDropDir] || s.seen[accounts.SSHDDropIn] {
		return nil
	}
	b := []byte(accounts.SSHDConfig(s.a.RootPasswordHash != ""))
	e := s.file(accounts.SSHDDropIn, 0o644)
	e.Size = int64(len(b))
	return s.next.Add(e, bytes.NewReader(b))
}
