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

// VendorCerts returns the certificates built into shim: those it checks
// GRUB and the kernel against. shim must have been verified first.
func VendorCerts(shim []byte) ([]*x509.Certificate, error) {
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
	if t.AuthorizedSize == 0 || end > uint64(len(sec)) {
		return nil, fmt.Errorf("shim's vendor certificate lies outside its section")
	}
	auth := sec[t.AuthorizedOffset:end]
	if c, err := x509.ParseCertificate(auth); err == nil {
		return []*x509.Certificate{c}, nil
	}
	certs := signatureListCerts(auth)
	if len(certs) == 0 {
		return nil, fmt.Errorf("shim's vendor certificate is neither a certificate nor a signature list holding one")
	}
	return certs, nil
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
// as stored.
var certX509GUID = [16]byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}

const signatureListHeader = 28

// signatureListCerts reads the X.509 certificates of a sequence of
// EFI_SIGNATURE_LISTs, skipping what is not one.
func signatureListCerts(b []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for len(b) >= signatureListHeader {
		var l signatureList
		binary.Read(bytes.NewReader(b), binary.LittleEndian, &l)
		size, hdr, each := uint64(l.SignatureListSize), uint64(l.SignatureHeaderSize), uint64(l.SignatureSize)
		if size < signatureListHeader || size > uint64(len(b)) || each <= 16 || signatureListHeader+hdr > size {
			break
		}
		entries := b[signatureListHeader+hdr : size]
		for l.SignatureType == certX509GUID && uint64(len(entries)) >= each {
			if c, err := x509.ParseCertificate(entries[16:each]); err == nil {
				certs = append(certs, c)
			}
			entries = entries[each:]
		}
		b = b[size:]
	}
	return certs
}
