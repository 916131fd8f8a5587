package bootstrap

import (
	"fmt"

	"github.com/moby/buildkit/client/llb"
)

// Options are the guest settings bootstrap applies.
type Options struct {
	Hostname string
	// RootPasswordSecret names a BuildKit secret holding a crypt(3) hash for
	// root; empty leaves root locked.
	RootPasswordSecret string
	// CacheNS separates package cache mounts of unrelated builds.
	CacheNS string
	// Arch is the target's GOARCH.
	Arch string
	// NoCache re-runs every step (docker buildx build --no-cache).
	NoCache bool
	// Access is how one gets in: keys, a user, cloud-init.
	Access Access
	// Epoch is SOURCE_DATE_EPOCH (digits), or "": with it, the steps that
	// install packages leave no trace of when they ran.
	Epoch string
	// SecureBoot is C2VM_SECURE_BOOT: off fetches no signed chain.
	SecureBoot string
}

// constraints are the options every bootstrap step gets.
func (o Options) constraints(name string) []llb.ConstraintsOpt {
	c := []llb.ConstraintsOpt{llb.WithCustomName(name)}
	if o.NoCache {
		c = append(c, llb.IgnoreCache)
	}
	return c
}

// Recipe makes one distribution family bootable.
type Recipe interface {
	// Name is the family as progress shows it ("debian").
	Name() string
	// Install adds a kernel, init and initramfs to the target.
	Install(st llb.State, o Options) llb.State
	// SignedBoot fetches the distribution's signed shim and GRUB, for a
	// disk that boots with Secure Boot on; ok is false where it has none.
	SignedBoot(st llb.State, o Options) (signed llb.State, ok bool)
}

// UnsupportedError says which distribution was found and what to do.
type UnsupportedError struct{ OS OSRelease }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("c2vm cannot add a kernel to %s: supported are Debian 11, 12, 13 and Ubuntu 20.04, 22.04, 24.04\n"+
		"  fix: start FROM a supported distribution, or use an image that already holds a kernel (/boot/vmlinuz-*), an initramfs and /sbin/init; c2vm then uses it as is", e.OS.Name())
}

// For picks the recipe for a distribution.
func For(o OSRelease) (Recipe, error) {
	switch o.ID {
	case "debian":
		if supportedDebian[o.VersionID] || o.VersionID == "" && o.Codename != "" {
			return debian{os: o}, nil
		}
	case "ubuntu":
		if supportedUbuntu[o.VersionID] {
			return debian{os: o, ubuntu: true}, nil
		}
	}
	return nil, &UnsupportedError{OS: o}
}
