// Package authenticode checks the Authenticode signatures of PE images,
// the UEFI applications of a Secure Boot chain (shim, GRUB, a kernel's EFI
// stub), as UEFI firmware and shim check them: the image's digest, computed
// over the file less its checksum, its certificate-table entry and the
// table, must be the digest a PKCS#7 signature in the table signed, and the
// signer must chain to a trusted certificate. Times are not checked:
// firmware has no trusted clock, and the certificates it trusts (Microsoft's
// UEFI CA 2011) outlive their validity on purpose.
//
// Images are hostile input: every offset and size is checked against the
// file before it is used. The PKCS#7 structure is read by
// github.com/smallstep/pkcs7; this package writes only what is particular
// to Authenticode, the PE digest and the signed content's DigestInfo.
//
// It runs where assembly runs: the host CLI (c2vm assemble) and the
// frontend's assembly step.
package authenticode
