package disk

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Mode is how a disk boots.
type Mode string

const (
	ModeAuto   Mode = "auto"
	ModeSystem Mode = "system" // the image's own kernel and init
	ModeApp    Mode = "app"    // c2vm's kernel and init run the image's program
)

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeSystem, ModeApp:
		return m, nil
	}
	return "", usererr.New(fmt.Sprintf("unknown mode %q", s), "use auto, system or app")
}
