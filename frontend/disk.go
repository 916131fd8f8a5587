package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/usererr"
	c2llb "github.com/c2vm/c2vm/llb"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// diskFor turns the Dockerfile's result into the LLB of its disk: in
// system mode made bootable (a kernel installed when it has none) and
// configured, with the image's program as a service; in app mode as it is,
// for c2vm's kernel and init. note puts a line in the build log.
func diskFor(ctx context.Context, c client.Client, st llb.State, cfg ocispecs.ImageConfig, tools llb.State, p ocispecs.Platform, set settings, cacheNS string, note func(string)) (llb.State, error) {
	arch, err := disk.ParseArch(p.Architecture)
	if err != nil || p.OS != "" && p.OS != "linux" {
		return llb.State{}, usererr.New(fmt.Sprintf("c2vm cannot make a disk for the platform %s", platforms.Format(p)),
			"build for linux/amd64 or linux/arm64 (--platform)")
	}
	bo := set.bootstrap
	bo.Arch, bo.CacheNS, bo.SecureBoot = string(arch), cacheNS, set.disk.SecureBoot
	if bo.Access.AuthorizedKeys, err = keysFromContext(ctx, c, bo.Access.AuthorizedKeys, set.keysFrom, p); err != nil {
		return llb.State{}, err
	}
	t, st, err := buildTarget(ctx, c, st, p, bo, set.mode)
	if err != nil {
		return llb.State{}, err
	}
	mode, err := t.mode(set.mode)
	if err != nil {
		return llb.State{}, err
	}
	do := set.disk
	do.Mode, do.Arch = string(mode), string(arch)
	if do.ImageConfig, err = json.Marshal(cfg); err != nil {
		return llb.State{}, err
	}
	if err := t.checkAccess(ctx, mode, bo); err != nil {
		return llb.State{}, err
	}
	if mode == disk.ModeApp {
		if err := t.runnable(cfg, set.mode); err != nil {
			return llb.State{}, err
		}
		do.Hostname = set.bootstrap.Hostname
		if bo.Access.Keys() {
			if st, err = configured(ctx, c, bootstrap.AppModeKeys(st, tools, bo), p); err != nil {
				return llb.State{}, err
			}
		}
		return c2llb.Disk(st, tools, do), nil
	}
	rootfs, err := bootable(ctx, c, st, tools, p, bo, t)
	if err != nil {
		return llb.State{}, err
	}
	if bootstrap.WantsService(set.app, cfg) && (t.systemd || !t.ownBoot) {
		if rootfs, err = appService(ctx, rootfs, cfg, t, set.app, bo, note); err != nil {
			return llb.State{}, err
		}
	} else if set.app == bootstrap.ServiceAlways {
		return llb.State{}, errNoSystemd
	}
	do.Signed = t.signed
	return c2llb.Disk(rootfs, tools, do), nil
}

// bootable returns the target made bootable and configured: an image that
// brings its own kernel and init gets the distribution-neutral part of
// guest configuration; a supported distribution gets a kernel, init and
// initramfs first.
func bootable(ctx context.Context, c client.Client, st, tools llb.State, p ocispecs.Platform, bo bootstrap.Options, t *target) (llb.State, error) {
	if t.beneath {
		// c2vm installed the kernel beneath the user's layers.
		return configured(ctx, c, bootstrap.Configure(st, tools, bo, bootstrap.Guest{Systemd: true, Resolved: true}), p)
	}
	if t.ownBoot {
		if t.recipe != nil && t.apt {
			// Its own kernel may be the distribution's, signed.
			t.signed = signedBoot(t.recipe, st, bo)
		}
		return configured(ctx, c, bootstrap.Configure(st, tools, bo, bootstrap.Guest{OwnBoot: true, Systemd: t.systemd, Resolved: t.resolved}), p)
	}
	installed := t.recipe.Install(st, bo)
	t.signed = signedBoot(t.recipe, st, bo)
	// Evaluate here so that a failing install is reported as such, and a
	// failing configuration as that.
	if err := evaluate(ctx, c, installed, p); err != nil {
		return llb.State{}, &BootstrapError{OS: t.os.Name(), Step: "install kernel (" + t.recipe.Name() + ")", Err: err}
	}
	return configured(ctx, c, bootstrap.Configure(installed, tools, bo, bootstrap.Guest{Systemd: true, Resolved: true}), p)
}

// configured runs the guest configuration now and returns its result, or
// the error c2vm guest-config wrote to its status file (a secret the build
// was not given, a bad key, an image it cannot add the user to): the step
// itself succeeds so that its message, not "exit code: 1", is the build's
// error.
func configured(ctx context.Context, c client.Client, cfg bootstrap.Configured, p ocispecs.Platform) (llb.State, error) {
	ref, err := solve(ctx, c, cfg.Root, p)
	if err != nil {
		return llb.State{}, fmt.Errorf("configuring the guest failed: %s", stepFailure(err))
	}
	name := path.Base(bootstrap.StatusFile)
	found, err := ref.ReadDir(ctx, client.ReadDirRequest{Path: path.Dir(bootstrap.StatusFile), IncludePattern: name})
	if err != nil {
		return llb.State{}, fmt.Errorf("configuring the guest: looking for c2vm guest-config's status: %v", err)
	}
	if len(found) == 0 {
		return cfg.Root, nil
	}
	status, err := ref.ReadFile(ctx, client.ReadRequest{Filename: bootstrap.StatusFile, Range: &client.FileRange{Length: 64 << 10}})
	if err != nil {
		return llb.State{}, fmt.Errorf("configuring the guest: reading c2vm guest-config's status: %v", err)
	}
	return llb.State{}, errors.New(string(status)) // the build step wrote it as a user error
}

// stepFailure is a failed step's error without BuildKit's long wrapping.
func stepFailure(err error) string {
	what := err.Error()
	if m := exitCode.FindString(what); m != "" {
		return "it ended with " + m + "; its output is in the build log above"
	}
	return what
}

// sshdPaths are where images keep an OpenSSH server.
var sshdPaths = []string{"/usr/sbin/sshd", "/sbin/sshd", "/usr/bin/sshd"}

// checkAccess refuses access options where c2vm cannot apply them: users
// and cloud-init in app mode (no one logs in; the image's program runs),
// keys for an image without an SSH server that c2vm cannot install into.
func (t *target) checkAccess(ctx context.Context, mode disk.Mode, bo bootstrap.Options) error {
	a := bo.Access
	if mode == disk.ModeApp {
		for _, o := range []struct {
			name string
			set  bool
		}{{"C2VM_ROOT_PASSWORD_SECRET", bo.RootPasswordSecret != ""}, {"C2VM_USER", a.User != ""}, {"C2VM_CLOUD_INIT", a.CloudInit}} {
			if o.set {
				return usererr.New(o.name+" applies to system mode; in app mode no one logs in, c2vm's init runs the image's program",
					"drop the option, or set C2VM_MODE=system with an image c2vm can make bootable")
			}
		}
		if a.Keys() && !hasAny(ctx, t.ref, sshdPaths...) {
			return usererr.New("C2VM_SSH_AUTHORIZED_KEYS in app mode gives the keys to root for the image's own SSH server, and this image has none (no /usr/sbin/sshd)",
				"make sshd the image's program, or use C2VM_MODE=system (c2vm installs openssh-server on Debian and Ubuntu)")
		}
		return nil
	}
	if !t.ownBoot {
		return nil // the install step adds what the options need
	}
	for _, need := range []struct {
		want             bool
		paths            []string
		option, what, do string
	}{
		{a.Keys(), sshdPaths, "C2VM_SSH_AUTHORIZED_KEYS", "an SSH server (/usr/sbin/sshd)", "install openssh-server"},
		{a.SudoNoPasswd, []string{"/usr/bin/sudo", "/bin/sudo"}, "C2VM_SUDO_NOPASSWD", "sudo", "install sudo"},
		{a.CloudInit, []string{"/usr/bin/cloud-init", "/bin/cloud-init"}, "C2VM_CLOUD_INIT", "cloud-init", "install cloud-init"},
	} {
		if need.want && !hasAny(ctx, t.ref, need.paths...) {
			return usererr.New(fmt.Sprintf("%s needs %s, which this image lacks; it brings its own kernel and init, so c2vm installs nothing into it", need.option, need.what),
				need.do+" in the Dockerfile")
		}
	}
	return nil
}

// keysFromContext adds the keys of C2VM_SSH_AUTHORIZED_KEYS=context:NAME/PATH:
// only that file of the named context is transferred, and it is checked
// here, so that a bad line fails the build before anything runs.
func keysFromContext(ctx context.Context, c client.Client, keys []string, from contextFile, p ocispecs.Platform) ([]string, error) {
	if from.name == "" {
		return keys, nil
	}
	where := fmt.Sprintf("C2VM_SSH_AUTHORIZED_KEYS=context:%s/%s", from.name, from.path)
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	nc, err := bc.NamedContext(from.name, dockerui.ContextOpt{Platform: &p, NoDockerignore: true,
		AsyncLocalOpts: func() []llb.LocalOption { return []llb.LocalOption{llb.FollowPaths([]string{from.path})} }})
	if err != nil || nc == nil {
		return nil, usererr.New(fmt.Sprintf("%s: the build has no context named %q", where, from.name),
			fmt.Sprintf("add --build-context %s=DIR to docker buildx build, DIR holding %s", from.name, from.path))
	}
	st, _, err := nc.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	ref, err := solve(ctx, c, *st, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	b, err := ref.ReadFile(ctx, client.ReadRequest{Filename: from.path, Range: &client.FileRange{Length: accounts.MaxKeysBytes + 1}})
	if err != nil {
		return nil, usererr.New(fmt.Sprintf("%s: cannot read %s in the context %s: %v", where, from.path, from.name, err), "name a file of that context")
	}
	more, err := accounts.ParseAuthorizedKeys(b)
	if err != nil {
		return nil, usererr.New(where+": "+err.Error(), accounts.KeysFix)
	}
	return append(append([]string{}, keys...), more...), nil
}

var errNoSystemd = usererr.New("C2VM_APP=service needs systemd, and this image brings its own init that is not systemd",
	"set C2VM_APP=off, or start the program from the image's own init")
