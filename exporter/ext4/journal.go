package ext4

import "encoding/binary"

const (
	jbd2Magic        = 0xC03B3998 // JBD2_MAGIC_NUMBER
	jbd2SuperblockV2 = 4          // JBD2_SUPERBLOCK_V2, the h_blocktype
)

// newJournalSuperblock is an empty jbd2 v2 journal as mke2fs makes it. It
// is clean (s_start 0, so nothing to replay), expects sequence 1 and has
// one user (this filesystem) and no features. The kernel turns on
// checksums (csum v3) itself at the first mount of a metadata_csum
// filesystem. The rest of the journal stays zeros, left unwritten.
func newJournalSuperblock(blocks uint64, uuid [16]byte) *journalSuperblock {
	be := binary.BigEndian
	j := new(journalSuperblock)
	h := j.s_header()
	be.PutUint32(h.h_magic(), jbd2Magic)
	be.PutUint32(h.h_blocktype(), jbd2SuperblockV2)
	be.PutUint32(j.s_blocksize(), blockSize)
	be.PutUint32(j.s_maxlen(), uint32(blocks))
	be.PutUint32(j.s_first(), 1) // the log starts after this block
	be.PutUint32(j.s_sequence(), 1)
	copy(j.s_uuid(), uuid[:])
	be.PutUint32(j.s_nr_users(), 1)
	return j
}
