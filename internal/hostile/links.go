package hostile

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// Symlink chains that make every lookup through them long: Linux follows
// up to 40 links of up to 4095 bytes, so one name can stand for tens of
// thousands of path components.

const chainLinks = 39

// linkChain is l1 -> l2 -> ... -> l39 -> d, each target padded with pad
// to about size bytes, then a file under l1 (that is, d/f).
func linkChain(pad string, size int) *ocitest.Tar {
	tr := ocitest.NewTar().Dir("d", 0o755)
	for i := chainLinks; i >= 1; i-- {
		next := fmt.Sprintf("l%d", i+1)
		if i == chainLinks {
			next = "d"
		}
		tr.Symlink(fmt.Sprintf("l%d", i), strings.Repeat(pad, (size-len(next))/len(pad))+next)
	}
	return tr.File("l1/f", "x", 0o644)
}

// longLinkChain: targets of 4 KB of "./", which change nothing.
func longLinkChain() Case {
	return Case{Name: "symlink chain of 4 KB targets", Top: linkChain("./", 4090), Check: content("d/f", "x")}
}

// linkWalkTooLong: targets of "d/../" pairs, each a real step down and up:
// a lookup through the chain walks thousands of components.
func linkWalkTooLong() Case {
	return Case{Name: "symlink chain walking thousands of components", Top: linkChain("d/../", 250), Err: "path components through symbolic links"}
}
