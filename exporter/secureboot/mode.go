package secureboot

import (
	"fmt"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Mode is what C2VM_SECURE_BOOT and --secure-boot ask for.
type Mode string

const (
	// ModeAuto boots through the signed chain when every piece is signed,
	// and otherwise through c2vm's own GRUB, saying which piece is not.
	ModeAuto Mode = "auto"
	// ModeRequire fails the build unless every piece is signed.
	ModeRequire Mode = "require"
	// ModeOff always boots through c2vm's own GRUB.
	ModeOff Mode = "off"
)

// ParseMode reads a mode; "" is auto.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeRequire, ModeOff:
		return Mode(s), nil
	}
	return "", usererr.New(fmt.Sprintf("secure boot %q is not auto, require or off", s),
		"set C2VM_SECURE_BOOT or --secure-boot to auto (the default), require or off")
}
