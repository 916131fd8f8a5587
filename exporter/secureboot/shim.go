package secureboot

import (
	"bytes"
	"crypto/x509"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
)

// vendorCertTable heads shim's .vendor_cert section: where the vendor's
// certificates (what shim trusts besides the firmware's db) and its list
// of revoked hashes lie, relative to the section's start.
type vendorCertTable struct {
	AuthorizedSize     uint32
	DeauthorizedSize   uint32
	AuthorizedOffset   uint32
	DeauthorizedOffset uint32
}

// maxVendorSection bounds the section read: shims carry a certificate or
// a short signature list, some KiB.
const maxVendorSection = 1 << 20

// Vendor is what shim's .vendor_cert section says: the certificates it
// checks GRUB and the kernel against, and what it revokes (its vendor
// dbx): signing certificates, such as Canonical's keys from before 2022,
// and SHA-256 digests of images.
type Vendor struct {
	Certs          []*x509.Certificate
	RevokedCerts   []*x509.Certificate
	RevokedDigests [][]byte
}

// VendorCerts reads shim's vendor section. shim must have been verified
// first.
func VendorCerts(shim []byte) (*Vendor, error) {
	f, err := pe.NewFile(bytes.NewReader(shim))
	if err != nil {
		return nil, fmt.Errorf("shim is not a PE image: %w", err)
	}
	s := f.Section(".vendor_cert")
	if s == nil {
		return nil, fmt.Errorf("shim has no .vendor_cert section: it trusts no distribution key")
	}
	if s.Size > maxVendorSection {
		return nil, fmt.Errorf("shim's .vendor_cert section is %d bytes", s.Size)
	}
	sec, err := io.ReadAll(io.LimitReader(s.Open(), maxVendorSection))
	if err != nil {
		return nil, err
	}
	var t vendorCertTable
	if err := binary.Read(bytes.NewReader(sec), binary.LittleEndian, &t); err != nil {
		return nil, fmt.Errorf("shim's .vendor_cert section is too short")
	}
	end := uint64(t.AuthorizedOffset) + uint64(t.AuthorizedSize)
	dend := uint64(t.DeauthorizedOffset) + uint64(t.DeauthorizedSize)
	if t.AuthorizedSize == 0 || end > uint64(len(sec)) || dend > uint64(len(sec)) {
		return nil, fmt.Errorf("shim's vendor certificate or revocation list lies outside its section")
	}
	v := &Vendor{}
	auth := sec[t.AuthorizedOffset:end]
	if c, err := x509.ParseCertificate(auth); err == nil {
		v.Certs = []*x509.Certificate{c}
	} else if v.Certs, _ = signatureLists(auth); len(v.Certs) == 0 {
		return nil, fmt.Errorf("shim's vendor certificate is neither a certificate nor a signature list holding one")
	}
	v.RevokedCerts, v.RevokedDigests = signatureLists(sec[t.DeauthorizedOffset:dend])
	return v, nil
}

// signatureList heads an EFI_SIGNATURE_LIST, the form of a vendor db
// built into shim (VENDOR_DB_FILE): entries of SignatureSize bytes, each a
// 16-byte owner GUID and the signature data.
type signatureList struct {
	SignatureType       [16]byte
	SignatureListSize   uint32
	SignatureHeaderSize uint32
	SignatureSize       uint32
}

// certX509GUID is EFI_CERT_X509_GUID, a5c059a1-94e4-4aa7-87b5-ab155c2bf072,
// and certSHA256GUID EFI_CERT_SHA256_GUID, c1c41626-504c-4092-aca9-41f936934328,
// as stored.
var (
	certX509GUID   = [16]byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}
	certSHA256GUID = [16]byte{0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28}
)

const signatureListHeader = 28

// signatureLists reads the X.509 certificates and SHA-256 digests of a
// sequence of EFI_SIGNATURE_LISTs, skipping other kinds.
func signatureLists(b []byte) (certs []*x509.Certificate, digests [][]byte) {
	for len(b) >= signatureListHeader {
		var l signatureList
		binary.Read(bytes.NewReader(b), binary.LittleEndian, &l)
		size, hdr, each := uint64(l.SignatureListSize), uint64(l.SignatureHeaderSize), uint64(l.SignatureSize)
		if size < signatureListHeader || size > uint64(len(b)) || each <= 16 || signatureListHeader+hdr > size {
			break
		}
		entries := b[signatureListHeader+hdr : size]
		for ; uint64(len(entries)) >= each; entries = entries[each:] {
			data := entries[16:each]
			switch l.SignatureType {
			case certX509GUID:
				if c, err := x509.ParseCertificate(data); err == nil {
					certs = append(certs, c)
				}
			case certSHA256GUID:
				if len(data) == 32 {
					digests = append(digests, data)
				}
			}
		}
		b = b[size:]
	}
	return certs, digests
}
