package appinit

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestValidateRefusesHostileValues(t *testing.T) {
	bad := map[string]Config{
		"NUL in argv":          {Entrypoint: []string{"/bin/sh\x00-c"}},
		"NUL in cmd":           {Cmd: []string{"a", "b\x00"}},
		"NUL in env":           {Env: []string{"A=b\x00C=d"}},
		"NUL in user":          {User: "root\x00"},
		"NUL in workdir":       {WorkingDir: "/a\x00"},
		"env without =":        {Env: []string{"FOO"}},
		"env without name":     {Env: []string{"=x"}},
		"relative workdir":     {WorkingDir: "app"},
		"user with two colons": {User: "a:b:c"},
		"long user":            {User: strings.Repeat("u", 300)},
		"hostname dash":        {Hostname: "-x"},
		"hostname empty label": {Hostname: "a..b"},
		"hostname underscore":  {Hostname: "a_b"},
		"hostname newline":     {Hostname: "a\nb"},
		"hostname too long":    {Hostname: strings.Repeat("a", 65)},
		"hostname label 64":    {Hostname: strings.Repeat("a", 64)},
		"signal unknown":       {StopSignal: "SIGFOO"},
		"signal zero":          {StopSignal: "0"},
		"signal 65":            {StopSignal: "65"},
		"signal rtmin+31":      {StopSignal: "SIGRTMIN+31"},
		"signal shell":         {StopSignal: "TERM; reboot"},
		"port proto":           {ExposedPorts: []string{"80/foo"}},
		"port zero":            {ExposedPorts: []string{"0/tcp"}},
		"port big":             {ExposedPorts: []string{"65536"}},
		"port space":           {ExposedPorts: []string{"80 /tcp"}},
		"port leading zero":    {ExposedPorts: []string{"080"}},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
	good := Config{Entrypoint: []string{"/app", ""}, Cmd: []string{"--x=ü"}, Env: []string{"A=", "B=c=d", "M=line\nline"},
		WorkingDir: "/srv", User: "1000:1000", StopSignal: "sigrtmax-2", Hostname: "web-1.example", ExposedPorts: []string{"80/tcp", "53/udp", "22"}}
	if err := good.Validate(); err != nil {
		t.Errorf("good config refused: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for s, want := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "9": syscall.SIGKILL,
		"SIGUSR1": syscall.SIGUSR1, "Sigwinch": syscall.SIGWINCH, "RTMIN": 34, "SIGRTMIN+3": 37, "RTMAX-1": 63, "SIGRTMAX": 64} {
		if got, err := ParseSignal(s); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	os.WriteFile(p, []byte(`{"Entrypoint":["/app"],"Hostname":"bad_name"}`), 0o644)
	if _, err := LoadConfig(p); err == nil {
		t.Error("invalid hostname loaded")
	}
	os.WriteFile(p, []byte(`{"Cmd":["`+strings.Repeat("x", maxConfigBytes)+`"]}`), 0o644)
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("oversized config: %v", err)
	}
	os.WriteFile(p, []byte(`{"Entrypoint":["/app"],"Cmd":["a"],"User":"app","Env":["A=b"]}`), 0o644)
	c, err := LoadConfig(p)
	if err != nil || c.User != "app" || len(c.Cmd) != 1 {
		t.Errorf("LoadConfig: %+v %v", c, err)
	}
}
