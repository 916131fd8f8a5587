package frontend

import (
	"context"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/secureboot"
	c2llb "github.com/c2vm/c2vm/llb"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// kernelBeneath puts the kernel beneath the user's layers: when the stage
// that becomes the disk starts (through any stage references) from an image
// of a supported distribution with its package manager and no kernel, the
// kernel, init and initramfs are installed on that base image and the
// user's steps are rebuilt on top. The install is then cached across
// Dockerfile edits, and the user's steps see a system whose package
// database already has the kernel. ok is false when this does not apply;
// the caller then builds as before (installing on top, or app mode).
// Deciding from the base alone means the user's steps run once, on the
// right base.
func kernelBeneath(ctx context.Context, c client.Client, st llb.State, p ocispecs.Platform, bo bootstrap.Options) (llb.State, *target, bool, error) {
	chain, ok, err := c2llb.FindChain(ctx, st, p)
	if err != nil || !ok {
		return llb.State{}, nil, false, err
	}
	base := llb.Image(chain.Base, llb.Platform(p))
	ref, err := solve(ctx, c, base, p)
	if err != nil {
		return llb.State{}, nil, false, err
	}
	bt := probe(ctx, ref)
	if bt.recipe == nil || !bt.apt || bt.ownBoot {
		return llb.State{}, nil, false, nil
	}
	installed := bt.recipe.Install(base, bo)
	// Evaluate here so that a failing install is reported as such.
	if err := evaluate(ctx, c, installed, p); err != nil {
		return llb.State{}, nil, false, &BootstrapError{OS: bt.os.Name(), Step: "install kernel (" + bt.recipe.Name() + ")", Err: err}
	}
	re, err := chain.Rebase(ctx, installed, p)
	if err != nil {
		return llb.State{}, nil, false, err
	}
	fref, err := solve(ctx, c, re, p)
	if err != nil {
		return llb.State{}, nil, false, err
	}
	t := probe(ctx, fref)
	t.beneath = true
	t.signed = signedBoot(bt.recipe, base, bo)
	return re, t, true, nil
}

// buildTarget builds the Dockerfile's result — on a base with the kernel
// installed when kernelBeneath applies (never in app mode) — and reads it.
func buildTarget(ctx context.Context, c client.Client, st llb.State, p ocispecs.Platform, bo bootstrap.Options, mode disk.Mode) (*target, llb.State, error) {
	if mode != disk.ModeApp {
		re, t, ok, err := kernelBeneath(ctx, c, st, p, bo)
		if err != nil || ok {
			return t, re, err
		}
	}
	ref, err := solve(ctx, c, st, p)
	if err != nil {
		return nil, llb.State{}, err
	}
	return probe(ctx, ref), st, nil
}

// signedBoot fetches the distribution's signed shim and GRUB from the
// image the kernel is installed on, unless Secure Boot is off.
func signedBoot(r bootstrap.Recipe, st llb.State, bo bootstrap.Options) *llb.State {
	if bo.SecureBoot == string(secureboot.ModeOff) {
		return nil
	}
	s, ok := r.SignedBoot(st, bo)
	if !ok {
		return nil
	}
	return &s
}
