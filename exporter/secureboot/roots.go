package secureboot

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// microsoftUEFICA is "Microsoft Corporation UEFI CA 2011", the certificate
// in the UEFI db of Secure Boot platforms that signs third-party boot
// loaders such as shim. It was taken from Debian 12's ovmf package
// (OVMF_VARS_4M.ms.fd, its db) and is pinned by its SHA-256 below.
//
//go:embed roots/microsoft-uefi-ca-2011.pem
var microsoftUEFICA []byte

const microsoftUEFICASHA256 = "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507"

// MicrosoftRoots are the certificates shim must chain to.
func MicrosoftRoots() []*x509.Certificate {
	c, err := pinned(microsoftUEFICA, microsoftUEFICASHA256)
	if err != nil {
		panic(err) // the embedded file is part of the program
	}
	return []*x509.Certificate{c}
}

func pinned(pemBytes []byte, sum string) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, fmt.Errorf("pinned certificate: no PEM block")
	}
	got := sha256.Sum256(b.Bytes)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("pinned certificate: SHA-256 %x, want %s", got, sum)
	}
	return x509.ParseCertificate(b.Bytes)
}
