package disk

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// maxCmdline is x86's COMMAND_LINE_SIZE less room for what c2vm adds.
const maxCmdline = 1536

// ParseCmdline splits extra kernel arguments the way the kernel does (by
// spaces, double quotes grouping), refusing what cannot be passed safely
// through a boot loader's configuration: control characters and lines too
// long for the kernel.
func ParseCmdline(s string) ([]string, error) {
	if len(s) > maxCmdline {
		return nil, usererr.New(fmt.Sprintf("kernel command line of %d bytes: the kernel takes at most 2048 with c2vm's own arguments", len(s)), fmt.Sprintf("keep extra arguments under %d bytes", maxCmdline))
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return nil, usererr.New(fmt.Sprintf("kernel command line %q holds a control character (0x%02x)", s, c), "give arguments on one line, separated by spaces")
		}
	}
	var words []string
	var cur strings.Builder
	quoted := false
	for _, c := range []byte(s) {
		switch {
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
		case c == ' ' && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return nil, usererr.New(fmt.Sprintf("kernel command line %q has an unterminated double quote", s), "close the quote")
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}
