package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/appinit"
	"github.com/c2vm/c2vm/internal/usererr"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"
)

// programFlags say what an app-mode disk runs and what it exposes. They
// start from the image config (an image source's, or --image-config) and
// override it field by field, as docker run's flags do.
type programFlags struct {
	imageConfig, entrypoint, cmd, workdir, user, hostname, kernelDir string
	env, expose                                                      []string
	set                                                              func(string) bool
}

func (p *programFlags) register(f *pflag.FlagSet) {
	f.StringVar(&p.imageConfig, "image-config", "", "a JSON file with an OCI image config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal, ExposedPorts); an image source's own config is used otherwise")
	f.StringVar(&p.entrypoint, "entrypoint", "", `app mode: the program, as a JSON array (["/app","--flag"]) or one path`)
	f.StringVar(&p.cmd, "cmd", "", `app mode: arguments (or the program without --entrypoint), as a JSON array or one word`)
	f.StringArrayVar(&p.env, "env", nil, "app mode: NAME=VALUE added to the program's environment (repeatable)")
	f.StringVar(&p.workdir, "workdir", "", "app mode: the program's working directory")
	f.StringVar(&p.user, "user", "", "app mode: user[:group] or uid[:gid] the program runs as")
	f.StringVar(&p.hostname, "hostname", "", "app mode: the VM's hostname (default c2vm)")
	f.StringArrayVar(&p.expose, "expose", nil, "a port the disk exposes, such as 8000/tcp, forwarded by c2vm run (repeatable)")
	kd := os.Getenv("C2VM_KERNEL_DIR")
	if kd == "" {
		kd = "/"
	}
	f.StringVar(&p.kernelDir, "kernel-dir", kd, "app mode: a root holding boot/vmlinuz-VERSION and lib/modules/VERSION, such as / with Debian's linux-image-amd64 installed, or dpkg -x of it; or a directory holding such a root per machine, amd64/ and arm64/ (default $C2VM_KERNEL_DIR or /)")
	p.set = func(name string) bool { return f.Changed(name) }
}

// config returns the program an app-mode disk runs (nil when none is
// named) and the exposed ports.
func (p *programFlags) config(img *v1.Config) (*appinit.Config, []string, error) {
	c := &appinit.Config{}
	var exposed []string
	if p.imageConfig != "" {
		var err error
		if img, err = readImageConfig(p.imageConfig); err != nil {
			return nil, nil, err
		}
	}
	if img != nil {
		c.Entrypoint, c.Cmd, c.Env = img.Entrypoint, img.Cmd, img.Env
		c.WorkingDir, c.User, c.StopSignal = img.WorkingDir, img.User, img.StopSignal
		for port := range img.ExposedPorts {
			exposed = append(exposed, port)
		}
		sort.Strings(exposed)
	}
	var err error
	if p.set("entrypoint") {
		// As docker run --entrypoint: a new entrypoint drops the image's CMD.
		c.Cmd = nil
		if c.Entrypoint, err = argList("--entrypoint", p.entrypoint); err != nil {
			return nil, nil, err
		}
	}
	if p.set("cmd") {
		if c.Cmd, err = argList("--cmd", p.cmd); err != nil {
			return nil, nil, err
		}
	}
	c.Env = append(c.Env, p.env...)
	if p.set("workdir") {
		c.WorkingDir = p.workdir
	}
	if p.set("user") {
		c.User = p.user
	}
	c.Hostname = p.hostname
	exposed = append(exposed, p.expose...)
	c.ExposedPorts = exposed
	if err := c.Validate(); err != nil {
		return nil, nil, usererr.New(fmt.Sprintf("app mode: %v", err), "fix the image config or the --entrypoint, --cmd, --env, --workdir, --user, --hostname and --expose flags")
	}
	return c, exposed, nil
}

// argList reads a JSON array of strings, or one word.
func argList(flag, v string) ([]string, error) {
	if !strings.HasPrefix(strings.TrimSpace(v), "[") {
		return []string{v}, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, usererr.New(fmt.Sprintf("%s %q is not a JSON array of strings: %v", flag, v, err), `write it as ["/app","--flag"]`)
	}
	return l, nil
}

// readImageConfig reads an OCI image config: the whole config file
// ({"config": {...}}) or its config object alone.
func readImageConfig(path string) (*v1.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("--image-config: %v", err), "give a JSON file with the image config")
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 8<<20+1))
	if err != nil || len(b) > 8<<20 {
		return nil, usererr.New(fmt.Sprintf("--image-config %s: unreadable or larger than 8 MiB", path), "give the image's config JSON")
	}
	var whole struct {
		Config *v1.Config `json:"config"`
	}
	if err := json.Unmarshal(b, &whole); err == nil && whole.Config != nil {
		return whole.Config, nil
	}
	var c v1.Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, usererr.New(fmt.Sprintf("--image-config %s: %v", path, err), "give the image's config JSON")
	}
	return &c, nil
}
