package bootstrap

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
)

// mapTree is an image's filesystem in memory: a path's value is a file's
// text, or "-> target" for a symlink; directories are implied.
type mapTree map[string]string

func (m mapTree) Lstat(p string) (Entry, bool) {
	if v, ok := m[p]; ok {
		link, isLink := strings.CutPrefix(v, "-> ")
		if !isLink {
			link = ""
		}
		return Entry{Name: path.Base(p), Link: link}, true
	}
	for k := range m {
		if strings.HasPrefix(k, strings.TrimSuffix(p, "/")+"/") {
			return Entry{Name: path.Base(p), Dir: true}, true
		}
	}
	return Entry{}, false
}

// ReadDir lists in name order, as BuildKit does.
func (m mapTree) ReadDir(dir string) []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		rest, ok := strings.CutPrefix(k, strings.TrimSuffix(dir, "/")+"/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if !seen[name] {
			seen[name] = true
			e, _ := m.Lstat(path.Join(dir, name))
			out = append(out, e)
		}
	}
	return out
}

func (m mapTree) ReadFile(p string, max int) ([]byte, bool) {
	v, ok := m[p]
	if !ok || strings.HasPrefix(v, "-> ") || len(v) > max {
		return nil, false
	}
	return []byte(v), true
}

const nginxUnit = `# Stop dance for nginx
[Unit]
Description=A high performance web server and a reverse proxy server
After=network.target

[Service]
Type=forking
PIDFile=/run/nginx.pid
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'
ExecReload=/usr/sbin/nginx -g 'daemon on; master_process on;' -s reload

[Install]
WantedBy=multi-user.target
`

// nginxTree is a merged-/usr Debian with nginx installed and enabled.
func nginxTree() mapTree {
	return mapTree{
		"/bin": "-> usr/bin", "/sbin": "-> usr/sbin", "/lib": "-> usr/lib",
		"/usr/sbin/nginx": "ELF", "/usr/bin/python3": "-> python3.11", "/usr/bin/python3.11": "ELF",
		"/usr/lib/systemd/system/nginx.service":                        nginxUnit,
		"/usr/lib/systemd/system/getty@.service":                       "[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\n",
		"/usr/lib/systemd/system/multi-user.target.wants/getty.target": "-> ../getty.target",
		"/etc/systemd/system/multi-user.target.wants/nginx.service":    "-> /lib/systemd/system/nginx.service",
		"/etc/systemd/system/getty.target.wants/getty@tty1.service":    "-> /lib/systemd/system/getty@.service",
	}
}

func TestResolve(t *testing.T) {
	m := nginxTree()
	m["/etc/loop1"], m["/etc/loop2"] = "-> loop2", "-> /etc/loop1"
	m["/etc/escape"] = "-> ../../../../../usr/sbin/nginx"
	m["/etc/dotdot"] = "-> /usr/lib/../../sbin/./nginx"
	for p, want := range map[string]string{
		"/sbin/nginx": "/usr/sbin/nginx", "/bin/python3": "/usr/bin/python3.11", "/etc/escape": "/usr/sbin/nginx",
		"/etc/dotdot": "/usr/sbin/nginx", "/lib/systemd/system": "/usr/lib/systemd/system", "/": "/",
		"/etc/loop1": "", "/usr/sbin/missing": "", "relative/nginx": "",
	} {
		got, ok := resolve(m, p)
		if got != want || ok != (want != "") {
			t.Errorf("resolve(%q) = %q %v, want %q", p, got, ok, want)
		}
	}
}

func TestFindTwins(t *testing.T) {
	tw := FindTwins(nginxTree(), "/sbin/nginx")
	if tw.Program != "/usr/sbin/nginx" || len(tw.Units) != 1 || tw.Units[0].Name != "nginx.service" ||
		!slices.Equal(tw.Links(), []string{"/etc/systemd/system/multi-user.target.wants/nginx.service"}) {
		t.Fatalf("twins %+v", tw)
	}
	if tw := FindTwins(nginxTree(), "/usr/bin/python3"); len(tw.Units) != 0 {
		t.Errorf("python3 has twins %+v", tw)
	}
	if tw := FindTwins(nginxTree(), "/sbin/agetty"); len(tw.Units) != 0 {
		t.Errorf("a program that is not in the image has twins %+v", tw)
	}
	for name, change := range map[string]func(mapTree){
		"not enabled": func(m mapTree) { delete(m, "/etc/systemd/system/multi-user.target.wants/nginx.service") },
		"masked":      func(m mapTree) { m["/etc/systemd/system/nginx.service"], m["/dev/null"] = "-> /dev/null", "" },
		"overridden":  func(m mapTree) { m["/etc/systemd/system/nginx.service"] = "[Service]\nExecStart=/usr/bin/python3\n" },
		"reset": func(m mapTree) {
			m["/usr/lib/systemd/system/nginx.service"] = nginxUnit + "[Service]\nExecStart=\nExecStart=/bin/true\n"
		},
		"not a service": func(m mapTree) {
			m["/usr/lib/systemd/system/nginx.service"] = strings.Replace(nginxUnit, "[Service]", "[X-Service]", 1)
		},
		"too big": func(m mapTree) {
			m["/usr/lib/systemd/system/nginx.service"] = nginxUnit + strings.Repeat("#", maxUnitBytes)
		},
		"past the bound": func(m mapTree) {
			for i := range maxEnabled {
				m[fmt.Sprintf("/etc/systemd/system/a.target.wants/a%d.service", i)] = "-> /dev/null"
			}
		},
		"a loop": func(m mapTree) {
			m["/etc/systemd/system/multi-user.target.wants"] = "-> /etc/systemd/system/multi-user.target.wants"
		},
	} {
		m := nginxTree()
		change(m)
		if tw := FindTwins(m, "/usr/sbin/nginx"); len(tw.Units) != 0 {
			t.Errorf("%s: twins %+v", name, tw)
		}
	}
}

// ExecStart= as systemd reads it: prefixes, quotes, a bare name searched in
// systemd's path, a template enabled through an instance, a .requires link.
func TestFindTwinsExecStart(t *testing.T) {
	for _, c := range []struct{ name, unit, link string }{
		{"nginx.service", "[Service]\nExecStart=-+/usr/sbin/nginx\n", "/etc/systemd/system/multi-user.target.wants/nginx.service"},
		{"nginx.service", "[Service]\nExecStart=@/sbin/nginx nginx\n", "/etc/systemd/system/multi-user.target.wants/nginx.service"},
		{"nginx.service", "[Service]\nExecStart=  \"/usr/sbin/nginx\" -g 'daemon on;'\n", "/etc/systemd/system/multi-user.target.wants/nginx.service"},
		{"nginx.service", "[Service]\nExecStart=nginx \\\n  -g x\n", "/etc/systemd/system/multi-user.target.wants/nginx.service"},
		{"web@.service", "[Service]\nExecStart=/usr/sbin/nginx -c /etc/%i.conf\n", "/usr/lib/systemd/system/sockets.target.requires/web@a.service"},
	} {
		m := nginxTree()
		delete(m, "/etc/systemd/system/multi-user.target.wants/nginx.service")
		m["/usr/lib/systemd/system/"+c.name] = c.unit
		m[c.link] = "-> ../" + c.name
		tw := FindTwins(m, "/usr/sbin/nginx")
		if !slices.Equal(tw.Links(), []string{c.link}) {
			t.Errorf("%q: twins %+v", c.unit, tw)
		}
	}
	for _, exec := range []string{"/usr/sbin/ngin\\x", "/usr/sbin/nginx%i", "$NGINX", "'/usr/sbin/nginx", "sbin/nginx", "/usr/sbin"} {
		m := nginxTree()
		m["/usr/lib/systemd/system/nginx.service"] = "[Service]\nExecStart=" + exec + "\n"
		if tw := FindTwins(m, "/usr/sbin/nginx"); len(tw.Units) != 0 {
			t.Errorf("ExecStart=%s: twins %+v", exec, tw)
		}
	}
}

func TestTwinsNote(t *testing.T) {
	tw := Twins{Program: "/usr/sbin/nginx", Units: []Service{{Name: "nginx.service"}}}
	for app, want := range map[ServicePolicy]string{
		ServiceAuto:   "c2vm: nginx.service already runs /usr/sbin/nginx; c2vm-app.service not added (C2VM_APP=service adds it and disables nginx.service)",
		ServiceAlways: "c2vm: c2vm-app.service runs /usr/sbin/nginx; nginx.service, which runs it too, disabled (C2VM_APP=auto keeps it instead)",
	} {
		if got := tw.Note(app); got != want {
			t.Errorf("%s: %q\nwant %q", app, got, want)
		}
	}
	tw.Units = append(tw.Units, Service{Name: "nginx-debug.service"})
	if got := tw.Note(ServiceAuto); !strings.HasPrefix(got, "c2vm: nginx.service, nginx-debug.service already run ") {
		t.Errorf("two: %q", got)
	}
}
