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

	vfsACLVersion  = 2 // POSIX_ACL_XATTR_VERSION: what getxattr returns and tar carries
	ext4ACLVersion = 1 // EXT4_ACL_VERSION: what ext4 stores
)

// aclToDisk converts an ACL from the VFS xattr format to ext4's on-disk
// format. The VFS format is version 2 with 8-byte entries. ext4's is
// version 1, with 4-byte entries for the owner, the owning group, the mask
// and others, and 8-byte entries with an id for named users and groups.
// The kernel converts on setxattr. A writer of raw disk blocks must do it
// itself, or the kernel returns EINVAL reading the ACL.
func aclToDisk(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	const vfsHeader, vfsEntry = len(aclHeader{}), len(aclEntry{})
	if len(v) < vfsHeader || (len(v)-vfsHeader)%vfsEntry != 0 {
		return nil, fmt.Errorf("ACL of %d bytes is not a posix_acl_xattr header and 8-byte entries", len(v))
	}
	if ver := le.Uint32((*aclHeader)(v).a_version()); ver != vfsACLVersion {
		return nil, fmt.Errorf("ACL version %d, want %d (the VFS xattr format)", ver, vfsACLVersion)
	}
	// Each entry keeps or shrinks its size: v's length is room enough.
	out := make([]byte, len(aclHeader{}), len(v))
	le.PutUint32((*aclHeader)(out).a_version(), ext4ACLVersion)
	for p := v[vfsHeader:]; len(p) > 0; p = p[vfsEntry:] {
		e := (*aclEntry)(p)
		tag, perm, id := le.Uint16(e.e_tag()), le.Uint16(e.e_perm()), le.Uint32(e.e_id())
		if perm&^7 != 0 {
			return nil, fmt.Errorf("ACL entry with permissions %#o", perm)
		}
		n := len(out)
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			out = out[:n+len(aclEntryShort{})]
			d := (*aclEntryShort)(out[n:])
			le.PutUint16(d.e_tag(), tag)
			le.PutUint16(d.e_perm(), perm)
		case aclUser, aclGroup:
			out = out[:n+len(aclEntry{})]
			d := (*aclEntry)(out[n:])
			le.PutUint16(d.e_tag(), tag)
			le.PutUint16(d.e_perm(), perm)
			le.PutUint32(d.e_id(), id)
		default:
			return nil, fmt.Errorf("ACL entry with unknown tag %#x", tag)
		}
	}
	return out, nil
}
