package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
