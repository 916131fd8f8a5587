package frontend

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// target is what the Dockerfile's result has, read from the built
// filesystem: it decides the mode and what system mode may do.
type target struct {
	ref      client.Reference
	os       bootstrap.OSRelease
	recipe   bootstrap.Recipe // nil: no recipe fits
	ownBoot  bool             // a kernel in /boot and an init
	apt      bool             // a package manager the recipes use
	systemd  bool
	resolved bool
	beneath  bool       // c2vm installed the kernel on the base, beneath the user's steps
	signed   *llb.State // the distribution's signed shim and GRUB, fetched beside the kernel
}

func probe(ctx context.Context, ref client.Reference) *target {
	t := &target{ref: ref, os: bootstrap.ParseOSRelease(readOSRelease(ctx, ref))}
	t.recipe, _ = bootstrap.For(t.os)
	t.ownBoot = hasKernelAndInit(ctx, ref)
	t.apt = hasAny(ctx, ref, "/usr/bin/apt-get")
	t.systemd = hasAny(ctx, ref, "/lib/systemd/systemd", "/usr/lib/systemd/systemd")
	t.resolved = hasAny(ctx, ref, "/lib/systemd/systemd-resolved", "/usr/lib/systemd/systemd-resolved")
	return t
}

// mode resolves C2VM_MODE: auto is system when the image brings its own
// kernel and init, or is a supported distribution with its package manager
// (distroless says ID=debian but has no apt); app otherwise.
func (t *target) mode(want disk.Mode) (disk.Mode, error) {
	canSystem := t.ownBoot || t.recipe != nil && t.apt
	switch {
	case want == disk.ModeApp || want == disk.ModeAuto && !canSystem:
		return disk.ModeApp, nil
	case canSystem:
		return disk.ModeSystem, nil
	case t.recipe == nil:
		_, err := bootstrap.For(t.os)
		return "", fmt.Errorf("C2VM_MODE=system: %w\n  or: C2VM_MODE=app runs the image's program with c2vm's own kernel", err)
	}
	return "", usererr.New(fmt.Sprintf("C2VM_MODE=system: %s has no apt-get, so c2vm cannot install a kernel in it (distroless images have none)", t.os.Name()),
		"use C2VM_MODE=app (c2vm's kernel runs the image's program), or build FROM an image with its package manager")
}

// runnable checks that app mode has a program to run, before anything is
// assembled; when auto chose app mode it also says why system mode was not
// possible.
func (t *target) runnable(cfg ocispecs.ImageConfig, want disk.Mode) error {
	if len(cfg.Entrypoint)+len(cfg.Cmd) > 0 {
		return nil
	}
	if want == disk.ModeApp {
		return usererr.New("C2VM_MODE=app runs the image's program, and this image names none (no ENTRYPOINT or CMD)", "add a CMD or ENTRYPOINT to the Dockerfile")
	}
	why := "it has no kernel and init of its own"
	if _, err := bootstrap.For(t.os); err != nil {
		why += ", and c2vm cannot install them into " + t.os.Name() + " (supported: Debian 11-13, Ubuntu 20.04-24.04)"
	} else if !t.apt {
		why += ", and " + t.os.Name() + " has no apt-get to install them with"
	}
	return usererr.New(fmt.Sprintf("c2vm cannot boot this image as a system (%s), and it names no program (ENTRYPOINT or CMD) to run with c2vm's kernel in app mode", why),
		"add a CMD or ENTRYPOINT to run it as an app, or start FROM a supported distribution to boot it as a system")
}

// program is ENTRYPOINT+CMD with the program resolved to an absolute path
// in the image through the image's PATH, as a container runtime resolves
// it: systemd would search its own PATH instead.
func (t *target) program(ctx context.Context, cfg ocispecs.ImageConfig) ([]string, error) {
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) == 0 {
		return nil, usererr.New("the image has no ENTRYPOINT or CMD to run as a service", "add one to the Dockerfile, or set C2VM_APP=off")
	}
	if strings.Contains(argv[0], "/") {
		return argv, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range cfg.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if !strings.HasPrefix(dir, "/") {
			continue
		}
		p := path.Join(dir, argv[0])
		if st, err := t.ref.StatFile(ctx, client.StatRequest{Path: p}); err == nil && !st.IsDir() {
			argv[0] = p
			return argv, nil
		}
	}
	return nil, usererr.New(fmt.Sprintf("the image's program %q is not in its PATH (%s)", argv[0], pathEnv),
		"install it, name it by absolute path in ENTRYPOINT/CMD, or set C2VM_APP=off")
}

// readOSRelease reads os-release, which is usually a symlink from /etc to
// /usr/lib.
func readOSRelease(ctx context.Context, ref client.Reference) []byte {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if dt, err := ref.ReadFile(ctx, client.ReadRequest{Filename: p}); err == nil && len(dt) > 0 {
			return dt
		}
	}
	return nil
}

func hasKernelAndInit(ctx context.Context, ref client.Reference) bool {
	entries, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: "/boot", IncludePattern: "vmlinuz-*"})
	if err != nil || len(entries) == 0 {
		return false
	}
	return hasAny(ctx, ref, "/sbin/init", "/usr/sbin/init", "/lib/systemd/systemd")
}

// hasAny reports whether the target has one of the paths.
func hasAny(ctx context.Context, ref client.Reference, paths ...string) bool {
	for _, p := range paths {
		if _, err := ref.StatFile(ctx, client.StatRequest{Path: p}); err == nil {
			return true
		}
	}
	return false
}
