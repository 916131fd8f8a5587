package secureboot

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/authenticode"
)

// fixture returns Debian 12's signed chain (C2VM_SECURE_BOOT_DIR, from
// hack/secureboot-files) and the boot tests' Debian 12 kernel
// (C2VM_FIXTURE); the tests are skipped without them, as make unit runs,
// and run in make boot-test.
func fixture(t *testing.T) (*Found, Piece) {
	dir, tree := os.Getenv("C2VM_SECURE_BOOT_DIR"), os.Getenv("C2VM_FIXTURE")
	if dir == "" || tree == "" {
		t.Skip("needs C2VM_SECURE_BOOT_DIR (hack/secureboot-files) and C2VM_FIXTURE (hack/fixture-tree)")
	}
	f, err := Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := filepath.Glob(filepath.Join(tree, "boot/vmlinuz-*"))
	if len(ks) == 0 {
		t.Fatalf("no kernel in %s/boot", tree)
	}
	k, err := os.ReadFile(ks[0])
	if err != nil {
		t.Fatal(err)
	}
	return f, Piece{Path: ks[0], Data: k}
}

func TestFixtureChainVerifies(t *testing.T) {
	f, k := fixture(t)
	c, err := Verify(f, k)
	if err != nil {
		t.Fatal(err)
	}
	if c.Vendor != "debian" || !strings.Contains(c.Signer, "Debian") || c.MokManager == nil {
		t.Fatalf("chain: vendor %q, signer %q, MokManager %d bytes; want debian, a Debian signer and MokManager", c.Vendor, c.Signer, len(c.MokManager))
	}
}

// A byte changed in the kernel's code after signing: its digest no longer
// matches, as shim would find.
func TestFixtureTamperedKernel(t *testing.T) {
	f, k := fixture(t)
	k.Data = append([]byte{}, k.Data...)
	k.Data[len(k.Data)/2] ^= 0x40
	_, err := Verify(f, k)
	var ue *UnsignedError
	if !errors.As(err, &ue) || ue.Piece != "kernel" || !strings.Contains(err.Error(), "changed after it was signed") {
		t.Fatalf("tampered kernel: %v; want the kernel named as changed after signing", err)
	}
}

// The kernel's signature removed, as an unsigned build would have none.
func TestFixtureUnsignedKernel(t *testing.T) {
	f, k := fixture(t)
	k.Data = stripSignature(t, k.Data)
	_, err := Verify(f, k)
	if !errors.Is(err, authenticode.ErrUnsigned) || !strings.Contains(err.Error(), "kernel") {
		t.Fatalf("unsigned kernel: %v; want ErrUnsigned naming the kernel", err)
	}
}

// A file signed, but not by the distribution: shim itself (Microsoft's
// signature) offered as the kernel.
func TestFixtureKernelOfAnotherSigner(t *testing.T) {
	f, _ := fixture(t)
	_, err := Verify(f, Piece{Path: "boot/vmlinuz-other", Data: f.Shim.Data})
	if err == nil || !strings.Contains(err.Error(), "chains to none of") {
		t.Fatalf("kernel signed by Microsoft: %v; want it refused as chaining to no vendor certificate", err)
	}
}

// A GRUB whose image was changed, and a shim whose signature chains to no
// Microsoft root, are refused too.
func TestFixtureTamperedShimAndGRUB(t *testing.T) {
	f, k := fixture(t)
	g := *f
	g.GRUB.Data = append([]byte{}, f.GRUB.Data...)
	g.GRUB.Data[len(g.GRUB.Data)/3] ^= 1
	if _, err := Verify(&g, k); err == nil || !strings.Contains(err.Error(), "GRUB") {
		t.Fatalf("tampered GRUB: %v", err)
	}
	s := *f
	s.Shim = f.GRUB // signed by Debian, not by Microsoft
	if _, err := Verify(&s, k); err == nil || !strings.Contains(err.Error(), "shim") {
		t.Fatalf("shim signed by Debian: %v", err)
	}
}

func TestFixtureDecide(t *testing.T) {
	f, k := fixture(t)
	unsigned := func() (Piece, error) { return Piece{Path: "boot/vmlinuz-custom", Data: stripSignature(t, k.Data)}, nil }
	c, note, err := Decide(ModeAuto, []string{f.Dir}, unsigned)
	if c != nil || err != nil || !strings.Contains(note, "boot/vmlinuz-custom") || !strings.Contains(note, "Secure Boot off") {
		t.Fatalf("auto, unsigned kernel: chain %v, note %q, err %v", c != nil, note, err)
	}
	if _, _, err := Decide(ModeRequire, []string{f.Dir}, unsigned); err == nil || !strings.Contains(err.Error(), "boot/vmlinuz-custom") {
		t.Fatalf("require, unsigned kernel: %v", err)
	}
	c, _, err = Decide(ModeRequire, []string{t.TempDir(), f.Dir}, func() (Piece, error) { return k, nil })
	if c == nil || err != nil {
		t.Fatalf("require, signed kernel: %v", err)
	}
}

// stripSignature removes the certificate table, as a kernel built
// without signing has none.
func stripSignature(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := authenticode.CertTable(b)
	if err != nil || r.Size == 0 {
		t.Fatalf("no certificate table: %v", err)
	}
	out := append([]byte{}, b...)
	if err := authenticode.ClearCertTable(out); err != nil {
		t.Fatal(err)
	}
	return out[:r.Offset]
}

// A kernel whose signer shim revokes (its vendor dbx, as Ubuntu's shim
// revokes Canonical's keys from before 2022), or whose digest it lists, is
// refused as shim would refuse it.
func TestFixtureRevoked(t *testing.T) {
	f, k := fixture(t)
	v, err := VendorCerts(f.Shim.Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.verify(k.Data); err != nil {
		t.Fatalf("the kernel before revoking: %v", err)
	}
	sigs, err := authenticode.Signatures(k.Data)
	if err != nil {
		t.Fatal(err)
	}
	byCert := *v
	byCert.RevokedCerts = append(byCert.RevokedCerts, sigs[0].Signer)
	if _, err := byCert.verify(k.Data); err == nil || !strings.Contains(err.Error(), "which shim revokes") {
		t.Errorf("revoked signer: %v", err)
	}
	d, _ := authenticode.Digest(k.Data, crypto.SHA256)
	byDigest := *v
	byDigest.RevokedDigests = append(byDigest.RevokedDigests, d)
	if _, err := byDigest.verify(k.Data); err == nil || !strings.Contains(err.Error(), "revokes this very image") {
		t.Errorf("revoked digest: %v", err)
	}
}
