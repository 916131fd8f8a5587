package ext4

import "encoding/binary"

const (
	jbd2Magic        = 0xC03B3998
	jbd2SuperblockV2 = 4
)

// journalSuperblock is an empty jbd2 v2 journal as mke2fs makes it: clean
// (s_start 0, so nothing to replay), sequence 1, one user (this
// filesystem), no features. The kernel turns on checksums (csum v3) itself
// at the first mount of a metadata_csum filesystem. The rest of the journal
// stays zeros, left unwritten. Fields are big-endian.
func journalSuperblock(blocks uint64, uuid [16]byte) []byte {
	be := binary.BigEndian
	b := make([]byte, blockSize)
	be.PutUint32(b[0x0:], jbd2Magic)
	be.PutUint32(b[0x4:], jbd2SuperblockV2)
	be.PutUint32(b[0xC:], blockSize)
	be.PutUint32(b[0x10:], uint32(blocks)) // s_maxlen
	be.PutUint32(b[0x14:], 1)              // s_first: the log starts after this block
	be.PutUint32(b[0x18:], 1)              // s_sequence
	copy(b[0x30:], uuid[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
