package secureboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/c2vm/c2vm/internal/authenticode"
	"github.com/c2vm/c2vm/internal/bounded"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Chain is a verified signed chain, what the ESP holds for it.
type Chain struct {
	Shim, GRUB []byte
	MokManager []byte // shim's MokManager, for enrolling a user's key; nil when absent or unsigned
	Vendor     string // GRUB reads EFI/<Vendor>/grub.cfg; "" when it names no such directory
	Signer     string // who signed GRUB and the kernel
	From       string // the directory the files came from
}

// Piece is one file of the chain as found: its path, for messages, and
// its bytes.
type Piece struct {
	Path string
	Data []byte
}

// Where Debian's and Ubuntu's packages put the signed files (shim-signed,
// shim-helpers-amd64-signed or shim, grub-efi-amd64-signed), relative to
// a root: the system, or a directory the packages were unpacked into.
// Ubuntu's shim-signed names its current shim .latest.
var (
	shimPaths = []string{"usr/lib/shim/shimx64.efi.signed.latest", "usr/lib/shim/shimx64.efi.signed"}
	grubPaths = []string{"usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"}
	mokPaths  = []string{"usr/lib/shim/mmx64.efi.signed", "usr/lib/shim/mmx64.efi"}
)

// MaxFile bounds what is read of any piece: a kernel is some tens of MiB.
const MaxFile = 128 << 20

// Found is what Load found in one directory.
type Found struct {
	Shim, GRUB, MokManager Piece
	Dir                    string
}

// Load reads shim, GRUB and MokManager from the first of dirs that holds
// shim and GRUB. Paths are opened beneath each directory (os.Root): a
// link cannot lead out of it.
func Load(dirs []string) (*Found, error) {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		f, err := loadDir(d)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, &UnsignedError{Piece: "shim", Path: "usr/lib/shim/shimx64.efi.signed", Err: errors.New("not found (Debian and Ubuntu package shim-signed, with grub-efi-amd64-signed)")}
}

func loadDir(dir string) (*Found, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f := &Found{Dir: dir}
	if f.Shim, err = readFirst(r, shimPaths); err != nil {
		return nil, err
	}
	if f.GRUB, err = readFirst(r, grubPaths); err != nil {
		return nil, err
	}
	f.MokManager, _ = readFirst(r, mokPaths)
	return f, nil
}

// readFirst reads the first of paths that r holds as a regular file.
func readFirst(r *os.Root, paths []string) (Piece, error) {
	for _, p := range paths {
		b, err := ReadFile(r, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return Piece{Path: p, Data: b}, err
	}
	return Piece{}, fs.ErrNotExist
}

// ReadFile reads a regular file of at most MaxFile bytes beneath r.
func ReadFile(r *os.Root, p string) ([]byte, error) {
	return bounded.ReadFile(r, p, MaxFile)
}

// UnsignedError names the piece that keeps a disk off the signed chain.
type UnsignedError struct {
	Piece string // shim, GRUB or kernel
	Path  string
	Err   error
}

func (e *UnsignedError) Error() string {
	return fmt.Sprintf("the %s (%s) cannot boot with Secure Boot on: %v", e.Piece, e.Path, e.Err)
}

func (e *UnsignedError) Unwrap() error { return e.Err }

// Verify checks the chain as firmware and shim will: shim against
// Microsoft's UEFI CA, GRUB and the kernel against shim's vendor
// certificate.
func Verify(f *Found, kernel Piece) (*Chain, error) {
	if _, err := authenticode.Verify(f.Shim.Data, MicrosoftRoots()); err != nil {
		return nil, &UnsignedError{Piece: "shim", Path: f.Shim.Path, Err: err}
	}
	vendor, err := VendorCerts(f.Shim.Data)
	if err != nil {
		return nil, &UnsignedError{Piece: "shim", Path: f.Shim.Path, Err: err}
	}
	signer, err := authenticode.Verify(f.GRUB.Data, vendor)
	if err != nil {
		return nil, &UnsignedError{Piece: "GRUB", Path: f.GRUB.Path, Err: err}
	}
	if _, err := authenticode.Verify(kernel.Data, vendor); err != nil {
		return nil, &UnsignedError{Piece: "kernel", Path: kernel.Path, Err: err}
	}
	c := &Chain{Shim: f.Shim.Data, GRUB: f.GRUB.Data, Vendor: GRUBVendor(f.GRUB.Data), Signer: signer.Subject.CommonName, From: f.Dir}
	if f.MokManager.Data != nil {
		if _, err := authenticode.Verify(f.MokManager.Data, vendor); err == nil {
			c.MokManager = f.MokManager.Data
		}
	}
	return c, nil
}

// Decide applies mode: the verified chain, or nil and a note saying why
// the disk boots through c2vm's GRUB (auto), or an error (require).
// kernel is read lazily: an "off" build reads nothing.
func Decide(mode Mode, dirs []string, kernel func() (Piece, error)) (*Chain, string, error) {
	if mode == ModeOff {
		return nil, "", nil
	}
	c, err := decide(dirs, kernel)
	var ue *UnsignedError
	switch {
	case err == nil:
		return c, "", nil
	case !errors.As(err, &ue):
		return nil, "", err
	case mode == ModeRequire:
		return nil, "", usererr.New("Secure Boot is required (C2VM_SECURE_BOOT=require), but "+ue.Error(),
			"boot a kernel your distribution signed (the c2vm frontend installs one for Debian and Ubuntu), or sign yours and enrol your key with MOK (docs/secure-boot.md), or build with C2VM_SECURE_BOOT=auto or off")
	}
	return nil, fmt.Sprintf("Secure Boot: %s; the disk boots through c2vm's own GRUB, so turn Secure Boot off in the VM's firmware (or see docs/secure-boot.md)", ue.Error()), nil
}

func decide(dirs []string, kernel func() (Piece, error)) (*Chain, error) {
	f, err := Load(dirs)
	if err != nil {
		return nil, err
	}
	k, err := kernel()
	if err != nil {
		return nil, &UnsignedError{Piece: "kernel", Path: k.Path, Err: err}
	}
	return Verify(f, k)
}
