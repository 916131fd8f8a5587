package authenticode

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// testPE is a PE32+ image with one section and no signature: headers in
// the first 0x200 bytes, the section's raw data in the next 0x200.
func testPE() []byte {
	b := make([]byte, 0x400)
	copy(b, "MZ")
	le.PutUint32(b[dosLfanew:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	coff := 0x44
	le.PutUint16(b[coff:], 0x8664)
	le.PutUint16(b[coff+coffNumSections:], 1)
	le.PutUint16(b[coff+coffOptSize:], 240)
	opt := coff + coffSize
	le.PutUint16(b[opt:], magicPE32Plus)
	le.PutUint32(b[opt+optSizeOfHeaders:], 0x200)
	le.PutUint32(b[opt+optDirs64-4:], 16) // NumberOfRvaAndSizes
	sec := opt + 240
	copy(b[sec:], ".text")
	le.PutUint32(b[sec+secSizeOfRaw:], 0x200)
	le.PutUint32(b[sec+secPointerToRaw:], 0x200)
	for i := 0x200; i < 0x400; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t testing.TB, cn string, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: parent == nil}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{c, key}
}

// sign appends an Authenticode signature by leaf over img's digest, as
// sbsign does: an SpcIndirectDataContent holding the SHA-256 digest, in a
// PKCS#7 SignedData, in a WIN_CERTIFICATE the security directory names.
func sign(t testing.TB, img []byte, leaf *testCA) []byte {
	t.Helper()
	l, err := readLayout(img)
	if err != nil {
		t.Fatal(err)
	}
	h := crypto.SHA256.New()
	l.digest(img, h)
	attr, _ := asn1.Marshal(struct{ Type asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}})
	di, _ := asn1.Marshal(digestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}, Digest: h.Sum(nil)})
	sd, err := pkcs7.NewSignedData(append(attr, di...))
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(leaf.cert, leaf.key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	entry := make([]byte, (winCertHeader+len(der)+7)&^7)
	le.PutUint32(entry, uint32(winCertHeader+len(der)))
	le.PutUint16(entry[4:], 0x0200)
	le.PutUint16(entry[6:], winCertPKCS7)
	copy(entry[winCertHeader:], der)
	out := append(append([]byte{}, img...), entry...)
	le.PutUint32(out[l.SecDirOffset:], uint32(len(img)))
	le.PutUint32(out[l.SecDirOffset+4:], uint32(len(entry)))
	return out
}

func TestVerifySigned(t *testing.T) {
	root := newCert(t, "test root", nil)
	other := newCert(t, "other root", nil)
	img := sign(t, testPE(), newCert(t, "test signer", root))
	signer, err := Verify(img, []*x509.Certificate{root.cert})
	if err != nil || signer.Subject.CommonName != "test signer" {
		t.Fatalf("Verify: %v, %v", signer, err)
	}
	if _, err := Verify(img, []*x509.Certificate{other.cert}); err == nil || !strings.Contains(err.Error(), `"test signer", which chains to none of "other root"`) {
		t.Errorf("another root: %v", err)
	}
	// The checksum field is outside the digest; the code is in it.
	l, _ := readLayout(img)
	cs := append([]byte{}, img...)
	cs[l.ChecksumOffset] ^= 0xff
	if _, err := Verify(cs, []*x509.Certificate{root.cert}); err != nil {
		t.Errorf("a changed checksum field: %v", err)
	}
	code := append([]byte{}, img...)
	code[0x300] ^= 1
	if _, err := Verify(code, []*x509.Certificate{root.cert}); err == nil || !strings.Contains(err.Error(), "changed after it was signed") {
		t.Errorf("a changed section: %v", err)
	}
}

func TestUnsigned(t *testing.T) {
	if _, err := Signatures(testPE()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("an unsigned image: %v", err)
	}
}

// Hostile headers fail with an error, never a panic or a read past the
// file.
func TestHostileHeaders(t *testing.T) {
	root := newCert(t, "test root", nil)
	signed := sign(t, testPE(), newCert(t, "test signer", root))
	l, _ := readLayout(signed)
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte{}, signed...)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"empty":               nil,
		"no MZ":               mutate(func(b []byte) { b[0] = 'X' }),
		"e_lfanew past end":   mutate(func(b []byte) { le.PutUint32(b[dosLfanew:], 0xfffffff0) }),
		"optional header big": mutate(func(b []byte) { le.PutUint16(b[0x44+coffOptSize:], 0xffff) }),
		"many sections":       mutate(func(b []byte) { le.PutUint16(b[0x44+coffNumSections:], 0xffff) }),
		"section past end":    mutate(func(b []byte) { le.PutUint32(b[0x44+coffSize+240+secSizeOfRaw:], 0xffffff00) }),
		"headers past end":    mutate(func(b []byte) { le.PutUint32(b[0x44+coffSize+optSizeOfHeaders:], 0xffffffff) }),
		"table past end":      mutate(func(b []byte) { le.PutUint32(b[l.SecDirOffset+4:], 0xffffff00) }),
		"table in headers":    mutate(func(b []byte) { le.PutUint32(b[l.SecDirOffset:], 0x10) }),
		"entry too long":      mutate(func(b []byte) { le.PutUint32(b[l.CertTable.Offset:], 0xfffffff0) }),
		"entry too short":     mutate(func(b []byte) { le.PutUint32(b[l.CertTable.Offset:], 4) }),
		"garbage signature":   mutate(func(b []byte) { b[l.CertTable.Offset+20] ^= 0xff }),
		"truncated":           signed[:len(signed)-100],
		"no optional header":  mutate(func(b []byte) { le.PutUint16(b[0x44+coffOptSize:], 0) })[:0x44+coffSize],
		"no directory count":  mutate(func(b []byte) { le.PutUint32(b[0x44+coffSize+optDirs64-4:], 4) }),
		"data after table":    append(append([]byte{}, signed...), 0),
	}
	for name, b := range cases {
		if _, err := Verify(b, []*x509.Certificate{root.cert}); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func FuzzSignatures(f *testing.F) {
	root := newCert(f, "test root", nil)
	f.Add(testPE())
	f.Add(sign(f, testPE(), newCert(f, "test signer", root)))
	// A file that ends right after its COFF header.
	f.Add(testPE()[:0x44+coffSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		Verify(b, []*x509.Certificate{root.cert})
	})
}
