package rootfs

import (
	"fmt"
	"sort"
	"strings"
)

// paxXattr is how PAX tar headers (GNU tar, BuildKit, Docker) carry xattrs.
const paxXattr = "SCHILY.xattr."

// Namespaces a root filesystem may carry. security.selinux is dropped, not
// refused: labels belong to the build host, and the guest relabels its own.
var xattrNamespaces = []string{"user.", "trusted.", "security.", "system.posix_acl_access", "system.posix_acl_default"}

// xattrsFromPAX collects an entry's xattrs from its PAX records.
func xattrsFromPAX(name string, pax map[string]string) ([]Xattr, error) {
	var xs []Xattr
	for k, v := range pax {
		if attr, ok := strings.CutPrefix(k, paxXattr); ok {
			xs = append(xs, Xattr{Name: attr, Value: []byte(v)})
		}
	}
	return checkXattrs(name, xs)
}

// checkXattrs sorts xattrs by name and validates them: known namespaces,
// a name after the prefix, bounded sizes. ext4 checks the finer limits.
func checkXattrs(name string, xs []Xattr) ([]Xattr, error) {
	out := xs[:0]
	total := 0
	for _, x := range xs {
		if x.Name == "security.selinux" {
			continue
		}
		if !knownXattr(x.Name) || strings.IndexByte(x.Name, 0) >= 0 || len(x.Name) > MaxNameBytes {
			return nil, fmt.Errorf("%s has the extended attribute %s, which a Linux root filesystem cannot hold (namespaces: user, trusted, security, POSIX ACLs)", quote(name), quote(x.Name))
		}
		total += len(x.Name) + len(x.Value)
		if total > maxXattrBytes {
			return nil, fmt.Errorf("%s has more than %d bytes of extended attributes", quote(name), maxXattrBytes)
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func knownXattr(n string) bool {
	for _, p := range xattrNamespaces {
		if strings.HasSuffix(p, ".") && strings.HasPrefix(n, p) && len(n) > len(p) || n == p {
			return true
		}
	}
	return false
}
