package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Bounds on the skeleton copied into a new home: /etc/skel holds a few dot
// files, and an image's oversized one must not stall the build.
const (
	maxSkelEntries = 4096
	maxSkelBytes   = 64 << 20
)

// homeMode is the new home's mode: private to the user and its group, as
// Debian's and Ubuntu's adduser make it.
const homeMode = 0o750

// makeHome makes a new user's home with a copy of /etc/skel, both the
// user's. A home the image already has keeps its contents, as with
// useradd -m.
func makeHome(root *os.Root, acc account) error {
	if err := root.MkdirAll(path.Dir(acc.home), 0o755); err != nil {
		return fmt.Errorf("making /%s: %w", path.Dir(acc.home), err)
	}
	existed := exists(root, acc.home)
	if err := mkdirOwned(root, acc.home, homeMode, acc.uid, acc.gid); err != nil {
		return err
	}
	if existed {
		return nil
	}
	return copySkel(root, acc)
}

// copySkel copies /etc/skel's directories, files and symlinks into the
// home, owned by the user; symlinks are copied as links, never followed.
func copySkel(root *os.Root, acc account) error {
	fi, err := root.Lstat("etc/skel")
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("/etc/skel: %w", err)
	}
	var entries int
	var bytes int64
	return fs.WalkDir(root.FS(), "etc/skel", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if p == "etc/skel" {
			return nil
		}
		if entries++; entries > maxSkelEntries {
			return fmt.Errorf("/etc/skel has more than %d entries", maxSkelEntries)
		}
		dst := acc.home + "/" + strings.TrimPrefix(p, "etc/skel/")
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		perm := info.Mode().Perm()
		switch {
		case d.IsDir():
			return mkdirOwned(root, dst, perm, acc.uid, acc.gid)
		case info.Mode().IsRegular():
			if bytes += info.Size(); bytes > maxSkelBytes {
				return fmt.Errorf("/etc/skel holds more than %d bytes", maxSkelBytes)
			}
			data, err := root.ReadFile(p)
			if err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
			return writeOwned(root, dst, data, perm, acc.uid, acc.gid)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := root.Readlink(p)
			if err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
			if err := root.Symlink(target, dst); err != nil {
				return fmt.Errorf("/%s: %w", dst, err)
			}
			return root.Lchown(dst, acc.uid, acc.gid)
		}
		return nil // devices, FIFOs, sockets have no place in a home
	})
}

// joinGroups adds the user to sudo (Debian, Ubuntu) or else wheel, and to
// docker, when the image has those groups.
func joinGroups(root *os.Root, name string) error {
	group, err := readSmall(root, "etc/group")
	if err != nil {
		return fmt.Errorf("/etc/group: %w", err)
	}
	var join []string
	if _, ok := lineOf(group, "sudo"); ok {
		join = append(join, "sudo")
	} else if _, ok := lineOf(group, "wheel"); ok {
		join = append(join, "wheel")
	}
	if _, ok := lineOf(group, "docker"); ok {
		join = append(join, "docker")
	}
	// group's and gshadow's members are both the fourth field.
	for _, file := range []string{"etc/group", "etc/gshadow"} {
		b, err := readSmall(root, file)
		if errors.Is(err, fs.ErrNotExist) && file == "etc/gshadow" {
			continue
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", file, err)
		}
		changed := false
		for _, g := range join {
			if out, ok := addMember(b, g, name); ok {
				b, changed = out, true
			}
		}
		if changed {
			if err := rewrite(root, file, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// addMember adds name to the member list (fourth field) of group g's line,
// unless it is there; ok is false when nothing changed.
func addMember(b []byte, g, name string) ([]byte, bool) {
	l, found := lineOf(b, g)
	if !found {
		return nil, false
	}
	f := strings.Split(l, ":")
	if len(f) != 4 {
		return nil, false
	}
	members := strings.Split(f[3], ",")
	for _, m := range members {
		if m == name {
			return nil, false
		}
	}
	if f[3] == "" {
		f[3] = name
	} else {
		f[3] += "," + name
	}
	return setField(b, g, 3, f[3])
}

const sudoersDropIn = "etc/sudoers.d/c2vm-user"

// writeSudoers lets the user run anything as root without a password. The
// name was checked against userName, so the line is valid sudoers syntax
// by construction.
func writeSudoers(root *os.Root, name string) error {
	if err := mkdirIfMissing(root, "etc/sudoers.d", 0o755); err != nil {
		return err
	}
	text := fmt.Sprintf("# c2vm: C2VM_SUDO_NOPASSWD=1 for C2VM_USER=%s\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n", name, name)
	return writeOwned(root, sudoersDropIn, []byte(text), 0o440, 0, 0)
}

// mkdirIfMissing makes a root-owned directory, keeping one that is there.
func mkdirIfMissing(root *os.Root, name string, mode fs.FileMode) error {
	if exists(root, name) {
		return nil
	}
	if err := root.MkdirAll(name, mode); err != nil {
		return fmt.Errorf("making /%s: %w", name, err)
	}
	return nil
}

// LoginMarker names the account c2vm gave the keys to, relative to the
// root. c2vm assemble reads it into c2vm.json, so that c2vm run can print
// the ssh command line.
const LoginMarker = "etc/c2vm/ssh-login"

const loginMarker = LoginMarker

// LoginName tells whether s may be read back from LoginMarker: root or a
// name ParseUser takes.
func LoginName(s string) bool { return s == "root" || userName.MatchString(s) }

// CloudConfigPath is c2vm's cloud-init configuration (C2VM_CLOUD_INIT=1),
// relative to the root; c2vm assemble records a disk that has it.
const CloudConfigPath = "etc/cloud/cloud.cfg.d/99_c2vm.cfg"

// installKeys writes the account's ~/.ssh/authorized_keys (0700 and 0600,
// the account's, as sshd's StrictModes wants them) and the login marker.
func installKeys(root *os.Root, acc account, keys []string) error {
	if acc.name == "root" {
		if err := mkdirOwned(root, acc.home, 0o700, 0, 0); err != nil {
			return err
		}
	} else if !exists(root, acc.home) {
		if err := makeHome(root, acc); err != nil {
			return err
		}
	}
	dir := acc.home + "/.ssh"
	if err := mkdirOwned(root, dir, 0o700, acc.uid, acc.gid); err != nil {
		return err
	}
	if err := writeOwned(root, dir+"/authorized_keys", AuthorizedKeysFile(keys), 0o600, acc.uid, acc.gid); err != nil {
		return err
	}
	if err := mkdirIfMissing(root, path.Dir(loginMarker), 0o755); err != nil {
		return err
	}
	return writeOwned(root, loginMarker, []byte(acc.name+"\n"), 0o644, 0, 0)
}
