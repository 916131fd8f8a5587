package appinit

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
broken line
app:x:1000:1000:App:/home/app:/bin/sh
other:x:1001:1001::/home/other:/bin/sh
`

const testGroup = `root:x:0:
tty:x:5:
audio:x:29:app,other
app:x:1000:
extra:x:2000:other,app
`

func TestResolveUser(t *testing.T) {
	pw, gr := []byte(testPasswd), []byte(testGroup)
	cases := []struct {
		spec   string
		passwd []byte
		want   Identity
	}{
		{"", pw, Identity{0, 0, nil, "/root"}},
		{"app", pw, Identity{1000, 1000, []uint32{29, 2000}, "/home/app"}},
		{"1000", pw, Identity{1000, 1000, []uint32{29, 2000}, "/home/app"}},
		{"4242", pw, Identity{4242, 0, nil, ""}},
		{"app:extra", pw, Identity{1000, 2000, nil, "/home/app"}},
		{"app:3000", pw, Identity{1000, 3000, nil, "/home/app"}},
		{"other:5", pw, Identity{1001, 5, nil, "/home/other"}},
		{"4242:4343", nil, Identity{4242, 4343, nil, ""}},
		{"", nil, Identity{0, 0, nil, ""}},
	}
	for _, c := range cases {
		got, err := ResolveUser(c.spec, c.passwd, gr)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", c.spec, got, err, c.want)
		}
	}
	for spec, passwd := range map[string][]byte{"nobody-here": pw, "app:nogroup": pw, "app": nil, "2147483648": pw} {
		if got, err := ResolveUser(spec, passwd, gr); err == nil {
			t.Errorf("ResolveUser(%q) = %+v, want an error", spec, got)
		}
	}
	if _, err := ResolveUser("app", nil, nil); err == nil || !strings.Contains(err.Error(), "no /etc/passwd") {
		t.Errorf("name without passwd: %v", err)
	}
}

func TestBuildEnv(t *testing.T) {
	got := BuildEnv([]string{"FOO=1", "PATH=/opt/bin", "FOO=2", "HOSTNAME=mine"}, "vm", "vt220", "/home/app")
	want := []string{"PATH=/opt/bin", "HOSTNAME=mine", "TERM=vt220", "FOO=2", "HOME=/home/app"}
	if !slices.Equal(got, want) {
		t.Errorf("BuildEnv = %q, want %q", got, want)
	}
	got = BuildEnv([]string{"HOME=/data"}, "vm", "", "")
	want = []string{"PATH=" + DefaultPath, "HOSTNAME=vm", "HOME=/data"}
	if !slices.Equal(got, want) {
		t.Errorf("BuildEnv = %q, want %q", got, want)
	}
	if got := BuildEnv(nil, "vm", "", ""); got[len(got)-1] != "HOME=/" {
		t.Errorf("HOME without passwd entry: %q", got)
	}
	for active, want := range map[string]string{"tty0 ttyS0\n": "vt220", "ttyS0 tty0\n": "linux", "hvc0": "vt220", "": "", "ttyAMA0": "vt220"} {
		if got := consoleTerm(active); got != want {
			t.Errorf("consoleTerm(%q) = %q, want %q", active, got, want)
		}
	}
}

// imageRoot makes a small image: programs in /usr/local/bin and /work/bin,
// one without an execute bit, a directory named like a program.
func imageRoot(t *testing.T) string {
	root := t.TempDir()
	for p, mode := range map[string]os.FileMode{"usr/local/bin/prog": 0o755, "bin/prog": 0o755, "bin/noexec": 0o644, "work/bin/local": 0o700} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte("#!/bin/sh\n"), mode)
	}
	os.MkdirAll(filepath.Join(root, "usr/bin/dirprog"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(testPasswd), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte(testGroup), 0o644)
	return root
}

func TestLookPath(t *testing.T) {
	root := imageRoot(t)
	cases := []struct{ name, path, cwd, want string }{
		{"prog", DefaultPath, "/", "/usr/local/bin/prog"},
		{"prog", "/bin:/usr/local/bin", "/", "/bin/prog"},
		{"local", "bin", "/work", "/work/bin/local"},
		{"local", ":/bin", "/work/bin", "/work/bin/local"},
		{"./rel", "", "/", "./rel"},
		{"/abs/missing", "", "/", "/abs/missing"},
	}
	for _, c := range cases {
		if got, err := LookPath(root, c.name, c.path, c.cwd); err != nil || got != c.want {
			t.Errorf("LookPath(%q, %q, %q) = %q, %v; want %q", c.name, c.path, c.cwd, got, err, c.want)
		}
	}
	for _, name := range []string{"noexec", "dirprog", "missing", ""} {
		if got, err := LookPath(root, name, DefaultPath, "/"); err == nil {
			t.Errorf("LookPath(%q) = %q", name, got)
		}
	}
}

func TestPrepare(t *testing.T) {
	root := imageRoot(t)
	p, err := Prepare(root, &Config{Entrypoint: []string{"prog"}, Cmd: []string{"a b"}, User: "app", WorkingDir: "/srv/new",
		Env: []string{"X=1"}}, "vm", "vt220")
	if err != nil {
		t.Fatal(err)
	}
	want := &Program{Path: "/usr/local/bin/prog", Argv: []string{"prog", "a b"}, Dir: "/srv/new",
		Env: []string{"PATH=" + DefaultPath, "HOSTNAME=vm", "TERM=vt220", "X=1", "HOME=/home/app"},
		ID:  Identity{1000, 1000, []uint32{29, 2000}, "/home/app"}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Prepare = %+v\nwant %+v", p, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "srv/new")); err != nil || !fi.IsDir() {
		t.Errorf("working directory not created: %v", err)
	}
	codes := map[int]Config{
		CodeInitError: {Entrypoint: []string{"prog"}, User: "ghost"},
		CodeNotFound:  {Cmd: []string{"nope"}},
	}
	for code, c := range codes {
		_, err := Prepare(root, &c, "vm", "")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != code {
			t.Errorf("Prepare(%+v) = %v, want exit code %d", c, err, code)
		}
	}
	_, err = Prepare(root, &Config{}, "vm", "")
	if err == nil || !strings.Contains(err.Error(), "neither ENTRYPOINT nor CMD") {
		t.Errorf("no command: %v", err)
	}
	_, err = Prepare(root, &Config{Cmd: []string{"nope"}}, "vm", "")
	if err == nil || err.Error() != `exec: "nope": executable file not found in $PATH` {
		t.Errorf("missing program: %v", err)
	}
}
