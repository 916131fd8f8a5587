package frontend

import (
	"context"
	"encoding/json"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/exporter"
	c2llb "github.com/c2vm/c2vm/llb"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// diskFor turns the Dockerfile's result into the LLB of its disk: in
// system mode made bootable (a kernel installed when it has none) and
// configured, with the image's program as a service; in app mode as it is,
// for c2vm's kernel and init.
func diskFor(ctx context.Context, c client.Client, st llb.State, cfg ocispecs.ImageConfig, tools llb.State, p ocispecs.Platform, set settings, cacheNS string) (llb.State, error) {
	ref, err := solve(ctx, c, st, p, nil)
	if err != nil {
		return llb.State{}, err
	}
	t := probe(ctx, ref)
	mode, err := t.mode(set.mode)
	if err != nil {
		return llb.State{}, err
	}
	do := set.disk
	do.Mode = string(mode)
	if do.ImageConfig, err = json.Marshal(cfg); err != nil {
		return llb.State{}, err
	}
	if mode == exporter.ModeApp {
		if set.bootstrap.RootPasswordSecret != "" {
			return llb.State{}, errAppPassword
		}
		do.Hostname = set.bootstrap.Hostname
		return c2llb.Disk(st, tools, do), nil
	}
	bo := set.bootstrap
	bo.Arch, bo.CacheNS = p.Architecture, cacheNS
	rootfs, err := bootable(ctx, c, st, tools, p, bo, t)
	if err != nil {
		return llb.State{}, err
	}
	if bootstrap.WantsService(set.app, cfg) && (t.systemd || !t.ownBoot) {
		argv, err := t.program(ctx, cfg)
		if err != nil {
			return llb.State{}, err
		}
		unit, err := bootstrap.AppUnit(cfg, argv)
		if err != nil {
			return llb.State{}, err
		}
		rootfs = bootstrap.AddAppService(rootfs, unit, bo)
	} else if set.app == bootstrap.AppService {
		return llb.State{}, errNoSystemd
	}
	return c2llb.Disk(rootfs, tools, do), nil
}

// bootable returns the target made bootable and configured: an image that
// brings its own kernel and init gets the distribution-neutral part of
// guest configuration; a supported distribution gets a kernel, init and
// initramfs first.
func bootable(ctx context.Context, c client.Client, st, tools llb.State, p ocispecs.Platform, bo bootstrap.Options, t *target) (llb.State, error) {
	if t.ownBoot {
		return bootstrap.Configure(st, tools, bo, bootstrap.Guest{OwnBoot: true, Systemd: t.systemd, Resolved: t.resolved}), nil
	}
	out := bootstrap.Configure(t.recipe.Install(st, bo), tools, bo, bootstrap.Guest{Systemd: true, Resolved: true})
	// Evaluate here so that a failing install is reported as such.
	if err := evaluate(ctx, c, out, p); err != nil {
		return llb.State{}, &BootstrapError{OS: t.os.Name(), Step: "install kernel (" + t.recipe.Name() + ")", Err: err}
	}
	return out, nil
}

type optionError string

func (e optionError) Error() string { return string(e) }

const (
	errAppPassword = optionError("C2VM_ROOT_PASSWORD_SECRET applies to system mode; in app mode no one logs in, c2vm's init runs the image's program\n  fix: drop the option, or set C2VM_MODE=system with an image c2vm can make bootable")
	errNoSystemd   = optionError("C2VM_APP=service needs systemd, and this image brings its own init that is not systemd\n  fix: set C2VM_APP=off, or start the program from the image's own init")
)
