package bootstrap

import (
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/llbtest"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestWantsService(t *testing.T) {
	for _, c := range []struct {
		cfg  ocispecs.ImageConfig
		app  ServicePolicy
		want bool
	}{
		{ocispecs.ImageConfig{Cmd: []string{"bash"}}, ServiceAuto, false},
		{ocispecs.ImageConfig{Cmd: []string{"/bin/sh", "-l"}}, ServiceAuto, false},
		{ocispecs.ImageConfig{}, ServiceAuto, false},
		{ocispecs.ImageConfig{Cmd: []string{"/bin/sh", "-c", "serve"}}, ServiceAuto, true},
		{ocispecs.ImageConfig{Cmd: []string{"python3", "-m", "http.server"}}, ServiceAuto, true},
		{ocispecs.ImageConfig{Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"bash"}}, ServiceAuto, true},
		{ocispecs.ImageConfig{Cmd: []string{"python3"}}, ServiceOff, false},
		{ocispecs.ImageConfig{Cmd: []string{"bash"}}, ServiceAlways, true},
	} {
		if got := WantsService(c.app, c.cfg); got != c.want {
			t.Errorf("%v %+v: %v", c.app, c.cfg, got)
		}
	}
}

func TestAppUnit(t *testing.T) {
	cfg := ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/bin:/usr/bin", `GREETING=he said "hi" 100% $HOME \o/`},
		WorkingDir: "/srv/www", User: "www-data:www-data", StopSignal: "SIGQUIT"}
	u, err := AppUnit(cfg, []string{"/usr/bin/python3", "-m", "http.server", "8000", "$HOME%h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ExecStart="/usr/bin/python3" "-m" "http.server" "8000" "$$HOME%%h"`,
		`Environment="GREETING=he said \"hi\" 100%% $HOME \\o/"`, "WorkingDirectory=/srv/www\n", "User=www-data\nGroup=www-data\n",
		"KillSignal=SIGQUIT", "After=network-online.target", "Restart=on-failure", "StandardOutput=journal+console"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	for name, bad := range map[string]struct {
		cfg  ocispecs.ImageConfig
		argv []string
	}{
		"newline in argv":   {ocispecs.ImageConfig{}, []string{"/bin/x", "a\nExecStartPost=/bin/evil"}},
		"newline in env":    {ocispecs.ImageConfig{Env: []string{"A=b\n[Service]"}}, []string{"/bin/x"}},
		"bad env name":      {ocispecs.ImageConfig{Env: []string{"A B=c"}}, []string{"/bin/x"}},
		"relative workdir":  {ocispecs.ImageConfig{WorkingDir: "srv"}, []string{"/bin/x"}},
		"user with newline": {ocispecs.ImageConfig{User: "root\nExecStart=/x"}, []string{"/bin/x"}},
		"unknown signal":    {ocispecs.ImageConfig{StopSignal: "SIGNOPE"}, []string{"/bin/x"}},
		"relative program":  {ocispecs.ImageConfig{}, []string{"x"}},
	} {
		if _, err := AppUnit(bad.cfg, bad.argv); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if u, _ := AppUnit(ocispecs.ImageConfig{User: "1000", StopSignal: "9"}, []string{"/x"}); !strings.Contains(u, "User=1000\n") || strings.Contains(u, "Group=") || !strings.Contains(u, "KillSignal=SIGKILL") {
		t.Errorf("numeric user and signal:\n%s", u)
	}
}

// With twins, the same step that enables c2vm-app.service removes the links
// that enable them.
func TestAddAppServiceDisablesTwins(t *testing.T) {
	link := "/etc/systemd/system/multi-user.target.wants/nginx.service"
	tw := Twins{Program: "/usr/sbin/nginx", Units: []Service{{Name: "nginx.service", Links: []string{link}}}}
	files, removed, links := fileOps(llbtest.Ops(t, AddAppService(llb.Image("docker.io/library/x"), "[Service]\n", tw, Options{})))
	if files[appUnitPath] != "[Service]\n" || !slices.Contains(links, "/etc/systemd/system/multi-user.target.wants/c2vm-app.service") || !slices.Contains(removed, link) {
		t.Errorf("files %v, removed %v, links %v", files, removed, links)
	}
	_, removed, _ = fileOps(llbtest.Ops(t, AddAppService(llb.Image("docker.io/library/x"), "[Service]\n", Twins{}, Options{})))
	if slices.Contains(removed, link) {
		t.Error("a link removed without twins")
	}
}
