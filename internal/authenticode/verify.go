package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/smallstep/pkcs7"

	// The digests Authenticode signatures use.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// ErrUnsigned says an image has no signature at all.
var ErrUnsigned = errors.New("not signed (no Authenticode signature)")

// winCertificate is a WIN_CERTIFICATE header: one entry of the PE
// certificate table, padded to 8 bytes.
type winCertificate struct {
	Length          uint32
	Revision        uint16
	CertificateType uint16
}

const (
	winCertHeader    = 8
	winCertPKCS7     = 0x0002 // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	maxSignatures    = 16
	maxImageForCheck = 256 << 20
)

// digestInfo is the DigestInfo that closes an SpcIndirectDataContent: the
// image's digest and its algorithm.
type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

var digestOIDs = map[string]crypto.Hash{
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// Signature is one signature of an image whose digest matched.
type Signature struct {
	Signer *x509.Certificate
	p7     *pkcs7.PKCS7
}

// Signatures returns the image's signatures that sign its present bytes.
// It fails when the image is not a PE file, has no signature
// ([ErrUnsigned]), or none signs what the file holds now.
func Signatures(img []byte) ([]Signature, error) {
	if len(img) > maxImageForCheck {
		return nil, fmt.Errorf("%d bytes is more than the %d a UEFI application is checked at", len(img), maxImageForCheck)
	}
	l, err := readLayout(img)
	if err != nil {
		return nil, err
	}
	if l.CertTable.Size == 0 {
		return nil, ErrUnsigned
	}
	var sigs []Signature
	var firstErr error
	digests := map[crypto.Hash][]byte{} // each algorithm hashes the image once
	table := img[l.CertTable.Offset:l.CertTable.end()]
	for n := 0; len(table) >= winCertHeader && n < maxSignatures; n++ {
		h := winCertificate{le.Uint32(table), le.Uint16(table[4:]), le.Uint16(table[6:])}
		if h.Length < winCertHeader || int64(h.Length) > int64(len(table)) {
			return nil, fmt.Errorf("PE certificate table entry %d claims %d bytes of %d", n, h.Length, len(table))
		}
		if h.CertificateType == winCertPKCS7 {
			s, err := checkSignature(img, l, table[winCertHeader:h.Length], digests)
			if err == nil {
				sigs = append(sigs, s)
			} else if firstErr == nil {
				firstErr = err
			}
		}
		next := (int64(h.Length) + 7) &^ 7
		if next >= int64(len(table)) {
			break
		}
		table = table[next:]
	}
	if len(sigs) == 0 {
		if firstErr == nil {
			firstErr = ErrUnsigned
		}
		return nil, firstErr
	}
	return sigs, nil
}

// checkSignature parses one PKCS#7 signature and checks that it signs the
// image's present digest.
func checkSignature(img []byte, l *peLayout, der []byte, digests map[crypto.Hash][]byte) (Signature, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return Signature{}, fmt.Errorf("unreadable signature: %w", err)
	}
	// Distribution signing certificates mark what they may sign with
	// critical extensions of their own (Red Hat's and Debian's code-signing
	// OIDs), which shim and firmware do not act on; Go's verifier would
	// refuse every such chain.
	for _, c := range p7.Certificates {
		c.UnhandledCriticalExtensions = nil
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return Signature{}, fmt.Errorf("the signature does not have exactly one signer with its certificate")
	}
	var spcData asn1.RawValue
	rest, err := asn1.Unmarshal(p7.Content, &spcData)
	var di digestInfo
	if err == nil {
		_, err = asn1.Unmarshal(rest, &di)
	}
	if err != nil {
		return Signature{}, fmt.Errorf("the signature's content is not an Authenticode SpcIndirectDataContent")
	}
	hf, ok := digestOIDs[di.Algorithm.Algorithm.String()]
	if !ok {
		return Signature{}, fmt.Errorf("the signature uses an unknown digest %s", di.Algorithm.Algorithm)
	}
	if digests[hf] == nil {
		h := hf.New()
		if err := l.digest(img, h); err != nil {
			return Signature{}, err
		}
		digests[hf] = h.Sum(nil)
	}
	if !bytes.Equal(digests[hf], di.Digest) {
		return Signature{}, fmt.Errorf("the image was changed after it was signed (its digest is not the one signed by %q)", signer.Subject.CommonName)
	}
	// The signer's own signature over the signed attributes, which hold
	// the content's digest.
	if err := p7.Verify(); err != nil {
		return Signature{}, fmt.Errorf("the signature by %q does not verify: %w", signer.Subject.CommonName, err)
	}
	return Signature{Signer: signer, p7: p7}, nil
}

// ChainsTo reports whether the signer chains to one of roots, through the
// certificates the signature carries, ignoring times as firmware does.
func (s Signature) ChainsTo(roots []*x509.Certificate) bool {
	pool := x509.NewCertPool()
	for _, r := range roots {
		// As in checkSignature: Debian's CA marks its Netscape
		// certificate type critical, which firmware ignores.
		c := *r
		c.UnhandledCriticalExtensions = nil
		pool.AddCert(&c)
	}
	return s.p7.VerifyWithChainAtTime(pool, s.Signer.NotBefore) == nil
}

// Verify checks that img is signed, unchanged, by a certificate that
// chains to one of roots, and returns that signature's signer.
func Verify(img []byte, roots []*x509.Certificate) (*x509.Certificate, error) {
	sigs, err := Signatures(img)
	if err != nil {
		return nil, err
	}
	var by []string
	for _, s := range sigs {
		if s.ChainsTo(roots) {
			return s.Signer, nil
		}
		by = append(by, fmt.Sprintf("%q", s.Signer.Subject.CommonName))
	}
	var trusted []string
	for _, r := range roots {
		trusted = append(trusted, fmt.Sprintf("%q", r.Subject.CommonName))
	}
	return nil, fmt.Errorf("signed by %s, which chains to none of %s", strings.Join(by, ", "), strings.Join(trusted, ", "))
}

// Digest is img's Authenticode digest with hash h, as a revocation list
// (a UEFI dbx) names an image.
func Digest(img []byte, h crypto.Hash) ([]byte, error) {
	if len(img) > maxImageForCheck {
		return nil, fmt.Errorf("%d bytes is more than the %d a UEFI application is checked at", len(img), maxImageForCheck)
	}
	l, err := readLayout(img)
	if err != nil {
		return nil, err
	}
	w := h.New()
	if err := l.digest(img, w); err != nil {
		return nil, err
	}
	return w.Sum(nil), nil
}
