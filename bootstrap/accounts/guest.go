// Package accounts applies the distribution-neutral part of guest
// configuration to a root filesystem, with c2vm's own code rather than the
// image's tools (an image that brings its own kernel and init may have no
// shell, no useradd, no ssh-keygen): remove baked SSH host keys, lock root
// or give it the password hash from a secret, add the user C2VM_USER asks
// for, and install SSH public keys with sshd settings to match.
//
// It runs inside the build, in the c2vm image, over the target mounted at a
// directory. The target is hostile: every path is opened through os.Root,
// so a symlink in it never leads outside it, and what c2vm creates for an
// account is checked not to be a symlink (files.go).
package accounts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Options say what to apply.
type Options struct {
	// PasswordHash is a crypt(3) hash for root; empty locks root.
	PasswordHash string
	// AuthorizedKeys are checked public keys (ParseAuthorizedKeys) for
	// User, or for root without one.
	AuthorizedKeys []string
	// User, when set, is the account to add (or adopt).
	User *User
	// KeysOnly gives root the keys and changes nothing else: app mode,
	// where the image's own sshd, host keys and accounts are its program's.
	KeysOnly bool
	// Log receives notes; nil discards them.
	Log io.Writer
}

// Apply configures the root filesystem at dir.
func Apply(dir string, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if o.KeysOnly {
		return installKeys(root, rootAccount, o.AuthorizedKeys)
	}
	if err := removeHostKeys(root); err != nil {
		return err
	}
	if err := setPassword(root, "root", o.rootPassword()); err != nil {
		return err
	}
	return o.access(root)
}

// check refuses what must never reach an account file.
func (o Options) check() error {
	if o.PasswordHash != "" {
		if err := CheckHash(o.PasswordHash); err != nil {
			return fmt.Errorf("the root password secret: %w", err)
		}
	}
	if o.User != nil && o.User.PasswordHash != "" {
		if err := CheckHash(o.User.PasswordHash); err != nil {
			return fmt.Errorf("the user password secret: %w", err)
		}
	}
	if o.KeysOnly && len(o.AuthorizedKeys) == 0 {
		return errors.New("no keys to install")
	}
	return nil
}

// rootPassword is root's password field: the hash, or no password. "!"
// locks root; when root gets keys it is "*" instead, which no password
// matches either but which sshd without PAM does not take for a locked
// account refusing keys too.
func (o Options) rootPassword() string {
	switch {
	case o.PasswordHash != "":
		return o.PasswordHash
	case o.User == nil && len(o.AuthorizedKeys) > 0:
		return "*"
	}
	return "!"
}

// access adds the user and installs the keys, with sshd settings to match.
func (o Options) access(root *os.Root) error {
	acc := rootAccount
	if o.User != nil {
		var err error
		if acc, err = addUser(root, *o.User); err != nil {
			return err
		}
		if err := joinGroups(root, acc.name); err != nil {
			return err
		}
		if o.User.SudoNoPasswd {
			if err := writeSudoers(root, acc.name); err != nil {
				return err
			}
		}
	}
	if len(o.AuthorizedKeys) > 0 {
		if err := installKeys(root, acc, o.AuthorizedKeys); err != nil {
			return err
		}
	}
	if o.User == nil && len(o.AuthorizedKeys) == 0 {
		return nil
	}
	note, err := configureSSHD(root, o.PasswordHash != "" || o.User != nil && o.User.PasswordHash != "")
	if note != "" && o.Log != nil {
		fmt.Fprintln(o.Log, note)
	}
	return err
}

// CheckHash accepts crypt(3) hashes ($id$salt$hash, with optional
// parameters such as rounds=): nothing that could end a field or a line of
// /etc/shadow.
func CheckHash(h string) error {
	if !strings.HasPrefix(h, "$") || len(h) > 512 || strings.Trim(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./$=,-") != "" {
		return errors.New("not a crypt(3) hash (such as mkpasswd -m yescrypt or openssl passwd -6 prints)")
	}
	return nil
}

// removeHostKeys deletes /etc/ssh/ssh_host_*_key{,.pub}: every machine makes
// its own at first boot.
func removeHostKeys(root *os.Root) error {
	d, err := root.Open("etc/ssh")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("/etc/ssh: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("/etc/ssh: %w", err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "ssh_host_") && (strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "_key.pub")) {
			if err := root.Remove("etc/ssh/" + n); err != nil {
				return fmt.Errorf("removing /etc/ssh/%s: %w", n, err)
			}
		}
	}
	return nil
}
