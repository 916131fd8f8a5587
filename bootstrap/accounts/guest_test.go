package accounts

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/c2vm/c2vm/internal/sshtest"
)

func tree(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for p, body := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if strings.HasPrefix(body, "->") {
			os.Symlink(body[2:], filepath.Join(root, p))
			continue
		}
		os.WriteFile(filepath.Join(root, p), []byte(body), 0o640)
	}
	return root
}

func read(t *testing.T, root, p string) string {
	b, _ := os.ReadFile(filepath.Join(root, p))
	return string(b)
}

func TestLockAndKeys(t *testing.T) {
	root := tree(t, map[string]string{"etc/shadow": "daemon:*:1::\nroot:$6$old$hash:19000:0:99999:7:::\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/ssh/ssh_host_ed25519_key": "k", "etc/ssh/ssh_host_ed25519_key.pub": "p",
		"etc/ssh/sshd_config": "c"})
	if err := Apply(root, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "etc/shadow"); got != "daemon:*:1::\nroot:!:19000:0:99999:7:::\n" {
		t.Errorf("shadow: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")); err == nil || read(t, root, "etc/ssh/sshd_config") != "c" {
		t.Error("host keys kept or config removed")
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/shadow")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestPasswordAndPasswdOnly(t *testing.T) {
	root := tree(t, map[string]string{"etc/passwd": "root::0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"})
	if err := Apply(root, Options{PasswordHash: "$y$j9T$salt$hash"}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "etc/passwd"); !strings.HasPrefix(got, "root:$y$j9T$salt$hash:0:0:") {
		t.Errorf("passwd: %q", got)
	}
	for _, bad := range []string{"plain", "$6$a:b", "$6$a\nroot::0:0", ""[0:0] + "!"} {
		if err := Apply(root, Options{PasswordHash: bad}); err == nil {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

// A hostile image's /etc/shadow pointing at the builder's own file is not
// followed out of the root.
func TestSymlinkOutOfRoot(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(outside, []byte("root:$6$host:1::\n"), 0o600)
	root := tree(t, map[string]string{"etc/shadow": "->" + outside})
	if err := Apply(root, Options{}); err == nil {
		t.Error("followed a symlink out of the root")
	}
	if b, _ := os.ReadFile(outside); string(b) != "root:$6$host:1::\n" {
		t.Errorf("host file changed: %q", b)
	}
	if err := Apply(tree(t, map[string]string{"etc/hostname": "x"}), Options{}); err == nil || !strings.Contains(err.Error(), "neither /etc/shadow nor /etc/passwd") {
		t.Errorf("no account files: %v", err)
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	k1, k2 := sshtest.PublicKey(t, "me@laptop"), sshtest.PublicKey(t, "")
	keys, err := ParseAuthorizedKeys([]byte("# mine\n\n" + k1 + "\r\n  " + strings.Replace(k2, " ", " \t ", 1) + "\n"))
	if err != nil || len(keys) != 2 || keys[0] != k1 || keys[1] != strings.TrimSpace(k2) {
		t.Fatalf("keys %q, %v", keys, err)
	}
	blob := strings.Fields(k1)[1]
	for text, want := range map[string]string{
		"":                                      "no key",
		"hello world":                           `unknown key type "hello"`,
		`from="10.0.0.1" ` + k1:                 "options such as from=",
		"ssh-rsa " + blob:                       "not a ssh-rsa key",
		"ssh-ed25519 !!!notbase64":              "not base64",
		"ssh-ed25519 " + blob + " evil\x1b[2J":  "control characters",
		"ssh-ed25519 " + blob + " a\rcommand=x": "control characters",
		"ssh-dss " + blob:                       "unknown key type",
		k1 + "\n" + strings.Repeat("x", 70<<10): "more than",
	} {
		if _, err := ParseAuthorizedKeys([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: got %v, want %q", text, err, want)
		}
	}
	if _, err := ParseAuthorizedKeys([]byte("ssh-ed25519 AAAA x\n" + k1)); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad first line: %v", err)
	}
}

func TestParseUser(t *testing.T) {
	if u, err := ParseUser("dev:1500"); err != nil || u.Name != "dev" || u.UID != 1500 {
		t.Errorf("dev:1500: %+v %v", u, err)
	}
	for _, bad := range []string{"", "Dev", "../x", "a b", "-x", "root", "dev:0", "dev:999", "dev:60001", "dev:+1500", "dev:", "x\n", strings.Repeat("a", 33), "a:b:c"} {
		if _, err := ParseUser(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// debianTree is the account files of a Debian image with docker.io.
func debianTree(t *testing.T, extra map[string]string) string {
	files := map[string]string{
		"etc/passwd":       "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/shadow":       "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
		"etc/group":        "root:x:0:\nsudo:x:27:\ndocker:x:101:old\nusers:x:100:\nnogroup:x:65534:\n",
		"etc/gshadow":      "root:*::\nsudo:*::\ndocker:!::old\nusers:*::\nnogroup:*::\n",
		"etc/skel/.bashrc": "# bashrc\n", "etc/skel/.profile": "# profile\n", "etc/skel/.config/app.conf": "x=1\n",
		"etc/skel/.link":       "->/etc/shadow",
		"usr/bin/bash":         "#!",
		"etc/ssh/sshd_config":  "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n",
		"etc/sudoers":          "@includedir /etc/sudoers.d\n",
		"etc/sudoers.d/README": "x",
	}
	for k, v := range extra {
		files[k] = v
	}
	return tree(t, files)
}

func owner(t *testing.T, root, p string) (uint32, uint32, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode()
}

func TestAddUserWithKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sets owners: run as root")
	}
	root := debianTree(t, map[string]string{"usr/bin/bash": "#!"})
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	key := sshtest.PublicKey(t, "dev@host")
	err := Apply(root, Options{AuthorizedKeys: []string{key}, User: &User{Name: "dev", SudoNoPasswd: true, PasswordHash: "$y$j9T$s$h"}})
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"etc/passwd":                         "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\ndev:x:1000:1000::/home/dev:/bin/bash\n",
		"etc/shadow":                         "root:!:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\ndev:$y$j9T$s$h::0:99999:7:::\n",
		"etc/group":                          "root:x:0:\nsudo:x:27:dev\ndocker:x:101:old,dev\nusers:x:100:\nnogroup:x:65534:\ndev:x:1000:\n",
		"etc/gshadow":                        "root:*::\nsudo:*::dev\ndocker:!::old,dev\nusers:*::\nnogroup:*::\ndev:!::\n",
		"etc/sudoers.d/c2vm-user":            "# c2vm: C2VM_SUDO_NOPASSWD=1 for C2VM_USER=dev\ndev ALL=(ALL:ALL) NOPASSWD: ALL\n",
		"home/dev/.bashrc":                   "# bashrc\n",
		"home/dev/.config/app.conf":          "x=1\n",
		"home/dev/.ssh/authorized_keys":      string(AuthorizedKeysFile([]string{key})),
		"etc/c2vm/ssh-login":                 "dev\n",
		"etc/ssh/sshd_config.d/10-c2vm.conf": SSHDConfig(true),
	} {
		if got := read(t, root, file); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", file, got, want)
		}
	}
	for p, want := range map[string][3]uint32{
		"home/dev": {1000, 1000, uint32(os.ModeDir | 0o750)}, "home/dev/.ssh": {1000, 1000, uint32(os.ModeDir | 0o700)},
		"home/dev/.ssh/authorized_keys": {1000, 1000, 0o600}, "home/dev/.config": {1000, 1000, uint32(os.ModeDir | 0o755)},
		"etc/sudoers.d/c2vm-user": {0, 0, 0o440}, "home/dev/.bashrc": {1000, 1000, 0o640},
	} {
		if u, g, m := owner(t, root, p); u != want[0] || g != want[1] || uint32(m) != want[2] {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", p, u, g, m, want[0], want[1], os.FileMode(want[2]))
		}
	}
	if l, _ := os.Readlink(filepath.Join(root, "home/dev/.link")); l != "/etc/shadow" {
		t.Errorf("skeleton symlink copied as %q, not as a link", l)
	}
	if u, _, _ := owner(t, root, "home/dev/.link"); u != 1000 {
		t.Errorf("skeleton symlink owned by %d", u)
	}
}

// Root gets the keys when no user is named; no password means password
// logins off, and root's field is "*" (no password, not a lock sshd
// without PAM would refuse keys for).
func TestRootKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sets owners: run as root")
	}
	root := debianTree(t, nil)
	key := sshtest.PublicKey(t, "")
	if err := Apply(root, Options{AuthorizedKeys: []string{key}}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "etc/shadow"); !strings.HasPrefix(got, "root:*:19000:") {
		t.Errorf("shadow %q", got)
	}
	if got := read(t, root, "etc/ssh/sshd_config.d/10-c2vm.conf"); !strings.Contains(got, "PasswordAuthentication no\n") || !strings.Contains(got, "PermitRootLogin prohibit-password\n") {
		t.Errorf("drop-in %q", got)
	}
	if u, _, m := owner(t, root, "root/.ssh/authorized_keys"); u != 0 || m != 0o600 || read(t, root, "etc/c2vm/ssh-login") != "root\n" {
		t.Errorf("root's keys: uid %d mode %v", u, m)
	}
	if strings.Contains(read(t, root, "etc/passwd"), "home") {
		t.Error("a user was added")
	}
}

// A Dockerfile's own useradd account is adopted: its line stays, it joins
// the groups and gets the keys.
func TestAdoptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sets owners: run as root")
	}
	root := debianTree(t, map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/bash\nvmuser:x:1001:1001::/home/vmuser:/bin/bash\n",
		"etc/shadow": "root:*:1:0:99999:7:::\nvmuser:!:1:0:99999:7:::\n", "home/vmuser/.bashrc": "mine\n"})
	key := sshtest.PublicKey(t, "")
	if err := Apply(root, Options{AuthorizedKeys: []string{key}, User: &User{Name: "vmuser"}}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "etc/passwd"); strings.Count(got, "vmuser") != 2 {
		t.Errorf("passwd %q", got)
	}
	if read(t, root, "home/vmuser/.bashrc") != "mine\n" || !strings.Contains(read(t, root, "etc/group"), "sudo:x:27:vmuser") {
		t.Error("home replaced or groups not joined")
	}
	if u, _, _ := owner(t, root, "home/vmuser/.ssh/authorized_keys"); u != 1001 {
		t.Errorf("keys owned by %d", u)
	}
	if err := Apply(debianTree(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\nvmuser:x:1001:1001::/home/vmuser:/bin/bash\n"}),
		Options{User: &User{Name: "vmuser", UID: 1500}}); err == nil || !strings.Contains(err.Error(), "uid 1001, not 1500") {
		t.Errorf("uid mismatch: %v", err)
	}
	if err := Apply(debianTree(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"}),
		Options{User: &User{Name: "sshd"}}); err == nil || !strings.Contains(err.Error(), "system account") {
		t.Errorf("system account: %v", err)
	}
}

// Symlinks where c2vm writes for an account are refused, whether they
// lead out of the root or inside it; files outside stay untouched.
func TestAccessSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sets owners: run as root")
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "authorized_keys"), []byte("host's\n"), 0o600)
	key := sshtest.PublicKey(t, "")
	for name, c := range map[string]struct {
		files map[string]string
		o     Options
		want  string
	}{
		"root .ssh out of the root": {map[string]string{"root/.ssh": "->" + outside}, Options{AuthorizedKeys: []string{key}}, "/root/.ssh is a symlink"},
		"keys file out of the root": {map[string]string{"root/.ssh/authorized_keys": "->" + outside + "/authorized_keys"}, Options{AuthorizedKeys: []string{key}}, "is a symlink"},
		"home into /etc":            {map[string]string{"home/dev": "->/etc"}, Options{User: &User{Name: "dev"}}, "/home/dev is a symlink"},
		"sudoers drop-in":           {map[string]string{"etc/sudoers.d/c2vm-user": "->../shadow"}, Options{User: &User{Name: "dev", SudoNoPasswd: true}}, "is a symlink"},
		"group out of the root":     {map[string]string{"etc/group": "->" + outside + "/authorized_keys"}, Options{User: &User{Name: "dev"}}, "/etc/group"},
	} {
		root := debianTree(t, c.files)
		if err := Apply(root, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "authorized_keys")); string(b) != "host's\n" {
		t.Errorf("file outside the root changed: %q", b)
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() == 0o700 && fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("directory outside the root changed")
	}
}

// App mode: only root's keys, in an image that may have no /etc at all.
func TestKeysOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sets owners: run as root")
	}
	root := tree(t, map[string]string{"usr/sbin/sshd": "x", "etc/ssh/ssh_host_ed25519_key": "kept"})
	if err := Apply(root, Options{KeysOnly: true, AuthorizedKeys: []string{sshtest.PublicKey(t, "")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, m := owner(t, root, "root"); m != os.ModeDir|0o700 || read(t, root, "etc/ssh/ssh_host_ed25519_key") != "kept" {
		t.Errorf("/root %v, or host key removed", m)
	}
	if !strings.Contains(read(t, root, "root/.ssh/authorized_keys"), "ssh-ed25519 ") {
		t.Error("no keys")
	}
}
