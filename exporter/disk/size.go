package disk

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Disk sizes --size accepts: from 64 MiB (less holds no bootable root) to
// 64 TiB (beyond, a typo is likelier than a wish).
const (
	MinDiskSize = 64 * MiB
	MaxDiskSize = 64 << 40
)

// ParseSize reads "auto" (0) or a positive number with an optional K, M, G
// or T suffix (powers of 1024, "iB" and "B" allowed); a bare number is bytes.
// NaN, infinities, fractions of a byte and sizes outside 64 MiB–64 TiB are
// refused with the reason.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	if t == "AUTO" || t == "" {
		return 0, nil
	}
	bad := func(why string) (int64, error) {
		return 0, usererr.New(fmt.Sprintf("bad size %q: %s", s, why), "use auto, or a number with K, M, G or T, such as 8G")
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult, t = int64(1)<<(10*(i+1)), strings.TrimSpace(t[:n-1])
		}
	}
	// Digits with at most one point: no sign, exponent, NaN or Inf.
	if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
		return bad("not a number")
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return bad("not a number")
	}
	bytes := v * float64(mult)
	switch {
	case bytes != math.Trunc(bytes):
		return bad("not a whole number of bytes")
	case bytes < float64(MinDiskSize):
		return bad(fmt.Sprintf("smaller than %s, the least a bootable disk needs", FormatSize(MinDiskSize)))
	case bytes > float64(MaxDiskSize):
		return bad(fmt.Sprintf("larger than %s", FormatSize(MaxDiskSize)))
	}
	return int64(bytes), nil
}

// FormatSize prints bytes in the largest binary unit that keeps one decimal.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<40:
		return strconv.FormatFloat(float64(n)/(1<<40), 'f', -1, 64) + "T"
	case n >= 1<<30 && n%(1<<30/10) == 0:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "G"
	case n >= 1<<20:
		return strconv.FormatInt((n+MiB-1)/MiB, 10) + "M"
	}
	return strconv.FormatInt(n, 10)
}
