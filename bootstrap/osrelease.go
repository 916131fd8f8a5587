// Package bootstrap makes a container image bootable: it recognises the
// distribution from os-release and appends LLB steps that install a kernel,
// an init system and an initramfs with virtio drivers, then configure the
// guest. One file per distribution family.
package bootstrap

import (
	"bufio"
	"strings"
)

// OSRelease holds the os-release fields recipes choose by.
type OSRelease struct {
	ID, VersionID, Codename, PrettyName string
	IDLike                              []string
}

// ParseOSRelease reads os-release(5) text: KEY=value lines, values optionally
// quoted.
func ParseOSRelease(data []byte) OSRelease {
	var o OSRelease
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			o.ID = strings.ToLower(v)
		case "ID_LIKE":
			o.IDLike = strings.Fields(strings.ToLower(v))
		case "VERSION_ID":
			o.VersionID = v
		case "VERSION_CODENAME":
			o.Codename = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	return o
}

// Name is how errors and progress refer to the distribution.
func (o OSRelease) Name() string {
	switch {
	case o.PrettyName != "":
		return o.PrettyName
	case o.ID != "":
		return strings.TrimSpace(o.ID + " " + o.VersionID)
	}
	return "an unknown distribution (no /etc/os-release)"
}
