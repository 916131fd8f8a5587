// Package guest applies the distribution-neutral part of guest
// configuration to a root filesystem, with c2vm's own code rather than the
// image's tools (an image that brings its own kernel and init may have no
// shell, no usermod, no ssh-keygen): remove baked SSH host keys, and lock
// root or give it the password hash from a secret.
//
// It runs inside the build, in the c2vm image, over the target mounted at a
// directory. The target is hostile: every path is opened through os.Root,
// so a symlink in it never leads outside it.
package guest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Options say what to apply.
type Options struct {
	// PasswordHash is a crypt(3) hash for root; empty locks root.
	PasswordHash string
}

// maxAccountFile bounds /etc/shadow and /etc/passwd as read.
const maxAccountFile = 16 << 20

// Apply configures the root filesystem at dir.
func Apply(dir string, o Options) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := removeHostKeys(root); err != nil {
		return err
	}
	pw := "!"
	if o.PasswordHash != "" {
		if err := CheckHash(o.PasswordHash); err != nil {
			return err
		}
		pw = o.PasswordHash
	}
	return setRootPassword(root, pw)
}

// CheckHash accepts crypt(3) hashes ($id$salt$hash, with optional
// parameters such as rounds=): nothing that could end a field or a line of
// /etc/shadow.
func CheckHash(h string) error {
	if !strings.HasPrefix(h, "$") || len(h) > 512 || strings.Trim(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./$=,-") != "" {
		return errors.New("the root password secret is not a crypt(3) hash (such as mkpasswd -m yescrypt or openssl passwd -6 prints)")
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

// setRootPassword sets root's password field in /etc/shadow, or in
// /etc/passwd for images without shadow passwords.
func setRootPassword(root *os.Root, pw string) error {
	for _, name := range []string{"etc/shadow", "etc/passwd"} {
		b, err := readSmall(root, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		out, ok := setField(b, pw)
		if !ok {
			if name == "etc/shadow" {
				continue
			}
			return fmt.Errorf("/etc/passwd has no root entry: root cannot be locked or given a password")
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return fmt.Errorf("/%s: %w", name, err)
		}
		_, err = f.Write(out)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fmt.Errorf("the image has neither /etc/shadow nor /etc/passwd: root cannot be locked or given a password")
}

func readSmall(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxAccountFile {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", maxAccountFile)
	}
	return root.ReadFile(name)
}

// setField replaces the second field of root's line.
func setField(b []byte, pw string) ([]byte, bool) {
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, l := range lines {
		if !bytes.HasPrefix(l, []byte("root:")) {
			continue
		}
		f := bytes.SplitN(l, []byte(":"), 3)
		if len(f) < 3 {
			return nil, false
		}
		lines[i] = bytes.Join([][]byte{f[0], []byte(pw), f[2]}, []byte(":"))
		return bytes.Join(lines, nil), true
	}
	return nil, false
}
