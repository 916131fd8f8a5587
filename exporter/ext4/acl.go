package ext4

import (
	"encoding/binary"
	"fmt"
)

// POSIX ACL tags (linux/posix_acl.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20

	vfsACLVersion  = 2 // posix_acl_xattr_header, what getxattr returns and tar carries
	ext4ACLVersion = 1 // ext4_acl_header, what ext4 stores
)

// aclToDisk converts an ACL from the VFS xattr format (version 2, 8-byte
// entries) to ext4's on-disk format (version 1, 4-byte entries for the
// owner, group, mask and other, 8-byte entries with an id for named users
// and groups). The kernel converts on setxattr; a writer of raw disk blocks
// must do it itself, or the kernel returns EINVAL reading the ACL.
func aclToDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || (len(v)-4)%8 != 0 {
		return nil, fmt.Errorf("ACL of %d bytes is not a posix_acl_xattr header and 8-byte entries", len(v))
	}
	if ver := le.Uint32(v); ver != vfsACLVersion {
		return nil, fmt.Errorf("ACL version %d, want %d (the VFS xattr format)", ver, vfsACLVersion)
	}
	out := make([]byte, 4, len(v))
	le.PutUint32(out, ext4ACLVersion)
	for p := v[4:]; len(p) > 0; p = p[8:] {
		tag, perm, id := le.Uint16(p), le.Uint16(p[2:]), le.Uint32(p[4:])
		if perm&^7 != 0 {
			return nil, fmt.Errorf("ACL entry with permissions %#o", perm)
		}
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
		case aclUser, aclGroup:
			out = le.AppendUint16(out, tag)
			out = le.AppendUint16(out, perm)
			out = le.AppendUint32(out, id)
		default:
			return nil, fmt.Errorf("ACL entry with unknown tag %#x", tag)
		}
	}
	return out, nil
}
