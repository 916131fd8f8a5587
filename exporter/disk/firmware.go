package disk

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Firmware selects which boot paths a disk carries.
type Firmware string

const (
	Hybrid Firmware = "hybrid" // BIOS and UEFI
	BIOS   Firmware = "bios"
	UEFI   Firmware = "uefi"
)

// ParseFirmware checks a --firmware value.
func ParseFirmware(s string) (Firmware, error) {
	switch f := Firmware(strings.ToLower(s)); f {
	case Hybrid, BIOS, UEFI:
		return f, nil
	}
	return "", usererr.New(fmt.Sprintf("unknown firmware %q", s), "use one of hybrid, bios, uefi")
}

// HasBIOS says whether the disk boots under BIOS.
func (f Firmware) HasBIOS() bool { return f == Hybrid || f == BIOS }

// HasUEFI says whether the disk boots under UEFI.
func (f Firmware) HasUEFI() bool { return f == Hybrid || f == UEFI }
