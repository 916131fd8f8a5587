// Package sshtest makes SSH public key lines for tests, without ssh-keygen,
// so unit tests of key parsing and guest configuration stay hermetic.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"testing"
)

// PublicKey is a fresh ed25519 public key line as ssh-keygen writes it:
// "ssh-ed25519 <base64 wire blob> <comment>" (no trailing space when the
// comment is empty).
func PublicKey(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	line := "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob)
	if comment != "" {
		line += " " + comment
	}
	return line
}
