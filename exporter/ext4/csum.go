package ext4

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is ext4's checksum primitive: crc32c with the given seed and no
// final inversion, as the kernel's ext4_chksum and e2fsprogs'
// ext2fs_crc32c_le compute it. hash/crc32 inverts on the way in and out.
// crc32c undoes both.
func crc32c(seed uint32, b []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, b)
}

func crc32cU32(seed, v uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return crc32c(seed, b[:])
}

// inodeSeed is the per-inode checksum seed that inodes, directory blocks and
// extent tree blocks start from. Generations are always 0.
func inodeSeed(fsSeed, ino uint32) uint32 {
	return crc32cU32(crc32cU32(fsSeed, ino), 0)
}
