package secureboot

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

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

// MaxFile bounds what is read of a kernel; MaxPiece of shim, GRUB and
// MokManager, which are some MiB each and must fit the ESP together.
const (
	MaxFile  = 128 << 20
	MaxPiece = 8 << 20
)

// FetchErrorFile is where a step that fetched a chain into a directory
// says why it found none.
const FetchErrorFile = "c2vm-fetch-error"

// Found is what Load found in one directory.
type Found struct {
	Shim, GRUB, MokManager Piece
	Dir                    string
}

// Load reads shim, GRUB and MokManager from the first of dirs that holds
// a usable shim and GRUB. Paths are opened beneath each directory
// (os.Root): a link cannot lead out of it. A directory whose files cannot
// be read as the chain is passed over; when none can, the error says why
// for the last one that had something.
func Load(dirs []string) (*Found, error) {
	why := errors.New("not found (Debian and Ubuntu package shim-signed, with grub-efi-amd64-signed)")
	for _, d := range dirs {
		if d == "" {
			continue
		}
		f, err := loadDir(d)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			why = fmt.Errorf("in %s: %w", d, err)
		}
	}
	return nil, &UnsignedError{Piece: "shim", Path: shimPaths[len(shimPaths)-1], Err: why}
}

func loadDir(dir string) (*Found, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f := &Found{Dir: dir}
	if f.Shim, err = readFirst(r, shimPaths); errors.Is(err, fs.ErrNotExist) {
		if reason, rerr := bounded.ReadFile(r, FetchErrorFile, 4<<10); rerr == nil {
			return nil, fmt.Errorf("no signed shim: %s", printable(reason))
		}
	}
	if err != nil {
		return nil, err
	}
	if f.GRUB, err = readFirst(r, grubPaths); err != nil {
		return nil, err
	}
	f.MokManager, _ = readFirst(r, mokPaths)
	return f, nil
}

// readFirst reads the first of paths that r holds.
func readFirst(r *os.Root, paths []string) (Piece, error) {
	for _, p := range paths {
		b, err := bounded.ReadFile(r, p, MaxPiece)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return Piece{Path: p, Data: b}, err
	}
	return Piece{}, fs.ErrNotExist
}

// printable is s with anything but printable ASCII as '?', on one line.
func printable(s []byte) string {
	b := []byte(strings.TrimSpace(string(s)))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
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
	signer, err := vendor.verify(f.GRUB.Data)
	if err != nil {
		return nil, &UnsignedError{Piece: "GRUB", Path: f.GRUB.Path, Err: err}
	}
	if _, err := vendor.verify(kernel.Data); err != nil {
		return nil, &UnsignedError{Piece: "kernel", Path: kernel.Path, Err: err}
	}
	c := &Chain{Shim: f.Shim.Data, GRUB: f.GRUB.Data, Vendor: GRUBVendor(f.GRUB.Data), Signer: signer.Subject.CommonName, From: f.Dir}
	if f.MokManager.Data != nil {
		if _, err := vendor.verify(f.MokManager.Data); err == nil {
			c.MokManager = f.MokManager.Data
		}
	}
	return c, nil
}

// verify checks an image shim will load: signed by a vendor certificate,
// and neither its digest nor its signer revoked.
func (v *Vendor) verify(img []byte) (*x509.Certificate, error) {
	signer, err := authenticode.Verify(img, v.Certs)
	if err != nil {
		return nil, err
	}
	if d, err := authenticode.Digest(img, crypto.SHA256); err == nil && slices.ContainsFunc(v.RevokedDigests, func(r []byte) bool { return bytes.Equal(r, d) }) {
		return nil, fmt.Errorf("shim revokes this very image (its digest is on shim's revocation list)")
	}
	if len(v.RevokedCerts) > 0 {
		sigs, _ := authenticode.Signatures(img)
		for _, s := range sigs {
			if s.ChainsTo(v.RevokedCerts) {
				return nil, fmt.Errorf("signed by %q, which shim revokes (a distribution key retired since): install the distribution's current kernel", s.Signer.Subject.CommonName)
			}
		}
	}
	return signer, nil
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
			"boot a kernel your distribution signed (the c2vm frontend installs one for Debian and Ubuntu), or build with C2VM_SECURE_BOOT=auto or off and boot with Secure Boot off (docs/secure-boot.md)")
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
