package accounts

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on authorized keys: a file of public keys, not a data store.
const (
	MaxKeysBytes = 64 << 10 // the whole text
	maxKeys      = 256      // lines with a key
	maxKeyBlob   = 16 << 10 // one decoded key (RSA 16384 is about 2 KiB)
	maxComment   = 1024
)

// keyTypes are the public key types current OpenSSH servers accept in
// authorized_keys. ssh-dss is left out: OpenSSH 9.8 no longer has it.
var keyTypes = map[string]bool{
	"ssh-ed25519":                        true,
	"ssh-rsa":                            true,
	"ecdsa-sha2-nistp256":                true,
	"ecdsa-sha2-nistp384":                true,
	"ecdsa-sha2-nistp521":                true,
	"sk-ssh-ed25519@openssh.com":         true,
	"sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// ParseAuthorizedKeys reads OpenSSH public keys, one a line (what
// ssh-keygen writes into a .pub file: TYPE BASE64 [COMMENT]); blank lines
// and # comments are skipped. The keys reach authorized_keys, a file sshd
// parses, so each line is checked rather than copied: a known type, a blob
// that decodes to a key of that type, a comment without control
// characters. Options (from=, command=…) are refused: they would be
// c2vm's to quote. It returns the keys in a canonical form.
func ParseAuthorizedKeys(text []byte) ([]string, error) {
	if len(text) > MaxKeysBytes {
		return nil, fmt.Errorf("%d bytes of keys, more than %d", len(text), MaxKeysBytes)
	}
	var keys []string
	for i, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d is not an OpenSSH public key: %v", i+1, err)
		}
		if len(keys) == maxKeys {
			return nil, fmt.Errorf("more than %d keys", maxKeys)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key in it (only blank or # lines)")
	}
	return keys, nil
}

// KeysFix is what to do about keys ParseAuthorizedKeys refused.
const KeysFix = "give OpenSSH public keys, one a line, as ssh-keygen writes them into a .pub file (TYPE BASE64 [COMMENT]; types ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-…@openssh.com)"

func parseKey(line string) (string, error) {
	typ, rest, _ := strings.Cut(line, " ")
	if !keyTypes[typ] {
		if len(typ) > 40 || !utf8.ValidString(typ) || strings.ContainsFunc(typ, isControl) {
			return "", fmt.Errorf("it does not start with a key type")
		}
		return "", fmt.Errorf("unknown key type %q (options such as from= or command= are not accepted)", typ)
	}
	blob64, comment, _ := strings.Cut(strings.TrimLeft(rest, " \t"), " ")
	blob, err := base64.StdEncoding.Strict().DecodeString(blob64)
	if err != nil || len(blob) == 0 || len(blob) > maxKeyBlob {
		return "", fmt.Errorf("the key after %s is not base64 of at most %d bytes", typ, maxKeyBlob)
	}
	if inner, ok := blobType(blob); !ok || inner != typ {
		return "", fmt.Errorf("the base64 part is not a %s key", typ)
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > maxComment || !utf8.ValidString(comment) || strings.ContainsFunc(comment, isControl) {
		return "", fmt.Errorf("the comment holds control characters, invalid UTF-8 or more than %d bytes", maxComment)
	}
	k := typ + " " + blob64
	if comment != "" {
		k += " " + comment
	}
	return k, nil
}

// blobType reads the type name every SSH public key blob starts with: a
// 32-bit big-endian length and that many bytes.
func blobType(b []byte) (string, bool) {
	if len(b) < 4 {
		return "", false
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > 64 || int(n) > len(b)-4 {
		return "", false
	}
	return string(b[4 : 4+n]), true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

// AuthorizedKeysFile is the file's text: c2vm's keys only, whatever the
// image had, so that a rebuild with other keys leaves no old one behind.
func AuthorizedKeysFile(keys []string) []byte {
	var b bytes.Buffer
	b.WriteString("# c2vm: the keys given when this disk was built; written anew with each build.\n")
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
