package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/initramfs"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/c2vm/c2vm/internal/usererr"
)

// SecureBootDirs are where assembly looks for the signed shim and GRUB
// when not told: $C2VM_SECURE_BOOT_DIR, the c2vm image's copy of Debian's
// (its Dockerfile), and the system's own packages.
func SecureBootDirs() []string {
	dirs := []string{"/usr/lib/c2vm/secureboot", "/"}
	if d := os.Getenv("C2VM_SECURE_BOOT_DIR"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

// wantKernel says whether writing the root must keep all of the kernel's
// bytes: a system disk with an ESP whose chain may be signed. Only amd64
// has signed chains c2vm knows.
func (b *build) wantKernel() bool {
	return b.layout.ESP != nil && b.mode == disk.ModeSystem && b.opts.SecureBoot != secureboot.ModeOff &&
		b.opts.Arch == disk.AMD64 && b.bootKernel() != ""
}

// bootKernel is the file GRUB boots first on a system disk (grub.Config):
// the target of the distribution's first kernel link when it has one,
// else the newest versioned kernel.
func (b *build) bootKernel() string {
	if len(b.boot.Stable) > 0 {
		if p, ok := b.inv.Resolve(b.boot.Stable[0][0]); ok {
			return p
		}
	}
	return b.boot.Kernel
}

// decideSecureBoot picks the ESP's chain: signed when every piece
// verifies, or as the mode says otherwise.
func (b *build) decideSecureBoot() error {
	if b.layout.ESP == nil {
		return nil
	}
	mode := b.opts.SecureBoot
	if mode == "" {
		mode = secureboot.ModeAuto
	}
	if b.opts.Arch != disk.AMD64 && mode != secureboot.ModeOff {
		return b.noSignedChain(mode)
	}
	dirs := b.opts.SecureBootDirs
	if dirs == nil {
		dirs = SecureBootDirs()
	}
	c, note, err := secureboot.Decide(mode, dirs, b.kernelPiece)
	b.kernel = nil // up to MaxFile bytes, no longer needed
	if err != nil {
		return err
	}
	if note != "" {
		b.opts.logf("%s", note)
		if b.opts.Log == nil {
			// --quiet keeps progress off, not a warning the user acts on.
			fmt.Fprintln(os.Stderr, "c2vm: "+note)
		}
	}
	if c != nil {
		b.opts.logf("Secure Boot: shim and GRUB from %s, GRUB and kernel signed by %q", c.From, c.Signer)
	}
	b.signed = c
	return nil
}

// kernelPiece is the kernel the disk boots as assembled: captured from the
// root for a system disk, c2vm's own file for an app disk.
func (b *build) kernelPiece() (secureboot.Piece, error) {
	if b.app != nil {
		p := b.app.kernel
		r, err := os.OpenRoot(filepath.Dir(p))
		if err != nil {
			return secureboot.Piece{Path: p}, err
		}
		defer r.Close()
		data, err := secureboot.ReadFile(r, filepath.Base(p))
		return secureboot.Piece{Path: p, Data: data}, err
	}
	k := b.kernel
	if k == nil || k.err != nil || k.data == nil || !k.whole {
		why := errors.New("not a regular file c2vm could read as the root was written")
		if k != nil && k.err != nil {
			why = k.err
		}
		return secureboot.Piece{Path: "/" + b.bootKernel()}, why
	}
	return secureboot.Piece{Path: "/" + k.path, Data: k.data}, nil
}

// noSignedChain is the decision on a machine with no signed chain c2vm
// knows (arm64): the disk boots with Secure Boot off, or fails when
// required.
func (b *build) noSignedChain(mode secureboot.Mode) error {
	if mode == secureboot.ModeRequire {
		return usererr.New(fmt.Sprintf("Secure Boot was required, and c2vm has no signed boot chain for %s disks", b.opts.Arch),
			"turn Secure Boot off in the VM's firmware and build with C2VM_SECURE_BOOT=off (--secure-boot off)")
	}
	b.opts.logf("Secure Boot: no signed chain for %s disks; the disk boots with Secure Boot off", b.opts.Arch)
	return nil
}

// captured is one file's bytes kept while the root is written: its first
// initramfs.HeadSize bytes, or all of them (whole).
type captured struct {
	path  string
	whole bool
	data  []byte
	err   error
}

// captureSink passes every entry on and keeps the bytes of one regular
// file, up to secureboot.MaxFile.
type captureSink struct {
	rootfs.Sink
	want *captured
}

func (s *captureSink) Add(e *rootfs.Entry, data io.Reader) error {
	if e.Path != s.want.path || data == nil {
		return s.Sink.Add(e, data)
	}
	if e.Kind != rootfs.KindReg || e.Data != nil {
		s.want.err = fmt.Errorf("not a plain regular file of at most %d bytes", secureboot.MaxFile)
		return s.Sink.Add(e, data)
	}
	// A kernel too large to check as a whole still has its head read, for
	// its machine.
	tooBig := s.want.whole && e.Size > secureboot.MaxFile
	keep := &capWriter{max: initramfs.HeadSize}
	if s.want.whole && !tooBig {
		keep.max = secureboot.MaxFile
	}
	err := s.Sink.Add(e, io.TeeReader(data, keep))
	if err == nil {
		s.want.data = keep.buf.Bytes()
	}
	if tooBig {
		s.want.err = fmt.Errorf("not a plain regular file of at most %d bytes", secureboot.MaxFile)
	}
	return err
}

// capWriter keeps the first max bytes written to it.
type capWriter struct {
	buf bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// checkKernelArch refuses a system disk whose kernel, as GRUB boots it
// first, is for another machine than the disk.
func (b *build) checkKernelArch() error {
	k := b.kernel
	if k == nil || k.data == nil {
		return nil
	}
	a := wrongArch(k.data, b.opts.Arch)
	if a == "" {
		return nil
	}
	return usererr.New(fmt.Sprintf("the kernel /%s is for %s machines, and the disk is for %s", k.path, a, b.opts.Arch),
		fmt.Sprintf("make the disk for %s (c2vm assemble --arch %s; docker buildx build --platform linux/%s), or install a kernel for %s in the image", a, a, a, b.opts.Arch))
}

// wrongArch is the machine a kernel whose first bytes are head is for
// when that is not arch; "" when it is arch or its format does not tell.
func wrongArch(head []byte, arch disk.Arch) disk.Arch {
	a, ok := initramfs.ImageArch(head)
	if !ok || a == arch {
		return ""
	}
	return a
}
