package vmrun

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// memorySyntax is the part of QEMU's size syntax c2vm passes on: a number,
// perhaps with a fraction, and an optional binary unit. Anything else (a
// comma above all) would be read by QEMU as more options.
var memorySyntax = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([KMGTkmgt]?)$`)

const (
	minMemory = 32 << 20 // below this not even an initramfs unpacks
	maxMemory = 1 << 40  // beyond QEMU's and any host's reach here
	maxCPUs   = 255      // q35 without an x2APIC-capable IOMMU
)

// ParseMemory checks a --memory value and returns it in bytes. A bare
// number is MiB, as QEMU reads it.
func ParseMemory(s string) (int64, error) {
	m := memorySyntax.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, usererr.New(fmt.Sprintf("bad memory size %q", s), "give a number with an optional K, M, G or T (powers of 1024; a bare number is MiB), such as 2G or 1536M")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, usererr.New(fmt.Sprintf("bad memory size %q", s), "give a number such as 2G")
	}
	unit := map[string]float64{"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[strings.ToUpper(m[2])]
	b := v * unit
	if b < minMemory || b > maxMemory {
		return 0, usererr.New(fmt.Sprintf("memory size %s is out of range", s), "give between 32M and 1T, such as 2G")
	}
	return int64(b), nil
}

// ParseCPUs checks a --cpus value given as text.
func ParseCPUs(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || !allDigits(strings.TrimSpace(s)) {
		return 0, usererr.New(fmt.Sprintf("bad CPU count %q", s), fmt.Sprintf("give a whole number from 1 to %d, such as 2", maxCPUs))
	}
	return n, checkCPUs(n)
}

func checkCPUs(n int) error {
	if n < 1 || n > maxCPUs {
		return usererr.New(fmt.Sprintf("CPU count %d is out of range", n), fmt.Sprintf("give a whole number from 1 to %d, such as 2", maxCPUs))
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
