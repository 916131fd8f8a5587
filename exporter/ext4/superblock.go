package ext4

import "encoding/binary"

const (
	sbMagic  = 0xEF53 // EXT4_SUPER_MAGIC
	sbSize   = 1024
	sbOffset = 1024 // the primary superblock's byte offset in block 0
	labelLen = 16   // EXT4_LABEL_MAX: the size of s_volume_name

	logBlockSize   = 2 // s_log_block_size: block size 1024 << 2
	stateValid     = 1 // EXT4_VALID_FS: cleanly unmounted
	errorsContinue = 1 // EXT4_ERRORS_CONTINUE
	dynamicRev     = 1 // EXT4_DYNAMIC_REV: variable inode sizes, features
	jnlBackup      = 1 // EXT3_JNL_BACKUP_BLOCKS: s_jnl_blocks holds a copy of the journal's i_block and size
	logFlexSize    = 4 // s_log_groups_per_flex: log2(groupsPerFlex)
	csumCRC32c     = 1 // EXT4_CRC32C_CHKSUM

	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20

	incompatFiletype = 0x2
	incompatExtents  = 0x40
	incompat64bit    = 0x80
	incompatFlexBG   = 0x200
	incompatCsumSeed = 0x2000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatMetadataCsum = 0x400

	// The default mount options mke2fs sets: user_xattr and acl.
	defmXattrUser = 0x4
	defmACL       = 0x8
)

// sbCounts are the totals the superblock records.
type sbCounts struct {
	freeBlocks, freeInodes uint64
}

// superblock encodes the superblock for group grp. The primary (group 0)
// is marked clean. Backups carry their group number and, as e2fsprogs
// writes them, a zero state.
func (w *Writer) superblock(c sbCounts, grp uint64) *ext4SuperBlock {
	le := binary.LittleEndian
	g := &w.l.geometry
	sb := new(ext4SuperBlock)
	le.PutUint32(sb.s_inodes_count(), uint32(g.groups*g.ipg))
	le.PutUint32(sb.s_blocks_count_lo(), uint32(g.blocks))
	le.PutUint32(sb.s_free_blocks_count_lo(), uint32(c.freeBlocks))
	le.PutUint32(sb.s_free_inodes_count(), uint32(c.freeInodes))
	le.PutUint32(sb.s_first_data_block(), 0)
	le.PutUint32(sb.s_log_block_size(), logBlockSize)
	le.PutUint32(sb.s_log_cluster_size(), logBlockSize) // clusters are blocks
	le.PutUint32(sb.s_blocks_per_group(), blocksPerGroup)
	le.PutUint32(sb.s_clusters_per_group(), blocksPerGroup)
	le.PutUint32(sb.s_inodes_per_group(), uint32(g.ipg))
	t, thi := w.sbTime()
	le.PutUint32(sb.s_wtime(), t)
	le.PutUint16(sb.s_max_mnt_count(), 0xFFFF) // -1: no check by mount count
	le.PutUint16(sb.s_magic(), sbMagic)
	if grp == 0 {
		le.PutUint16(sb.s_state(), stateValid)
	}
	le.PutUint16(sb.s_errors(), errorsContinue)
	le.PutUint32(sb.s_lastcheck(), t)
	le.PutUint32(sb.s_rev_level(), dynamicRev)
	le.PutUint32(sb.s_first_ino(), firstIno)
	le.PutUint16(sb.s_inode_size(), inodeSize)
	le.PutUint16(sb.s_block_group_nr(), uint16(grp))
	le.PutUint32(sb.s_feature_compat(), compatHasJournal|compatExtAttr|compatDirIndex)
	le.PutUint32(sb.s_feature_incompat(), incompatFiletype|incompatExtents|incompat64bit|incompatFlexBG|incompatCsumSeed)
	le.PutUint32(sb.s_feature_ro_compat(), roCompatSparseSuper|roCompatLargeFile|roCompatHugeFile|roCompatDirNlink|roCompatExtraIsize|roCompatMetadataCsum)
	copy(sb.s_uuid(), w.uuid[:])
	copy(sb.s_volume_name(), w.p.Label)
	le.PutUint32(sb.s_journal_inum(), journalIno)
	copy(sb.s_hash_seed(), w.p.HashSeed[:])
	*sb.s_def_hash_version() = hashHalfMD4
	*sb.s_jnl_backup_type() = jnlBackup
	le.PutUint16(sb.s_desc_size(), descSize)
	le.PutUint32(sb.s_default_mount_opts(), defmXattrUser|defmACL)
	le.PutUint32(sb.s_mkfs_time(), t)
	j := w.inodes[journalIno-1]
	jb := sb.s_jnl_blocks()
	*jb.i_block() = j.iblock
	le.PutUint32(jb.i_size_high(), uint32(j.size>>32))
	le.PutUint32(jb.i_size_lo(), uint32(j.size))
	le.PutUint32(sb.s_blocks_count_hi(), uint32(g.blocks>>32))
	le.PutUint32(sb.s_free_blocks_count_hi(), uint32(c.freeBlocks>>32))
	le.PutUint16(sb.s_min_extra_isize(), extraIsize)
	le.PutUint16(sb.s_want_extra_isize(), extraIsize)
	le.PutUint32(sb.s_flags(), flagSignedDir)
	*sb.s_log_groups_per_flex() = logFlexSize
	*sb.s_checksum_type() = csumCRC32c
	le.PutUint32(sb.s_checksum_seed(), w.seed)
	*sb.s_wtime_hi() = thi
	*sb.s_mkfs_time_hi() = thi
	*sb.s_lastcheck_hi() = thi
	le.PutUint32(sb.s_checksum(), crc32c(^uint32(0), sb.csummed()))
	return sb
}

// sbTime splits [Params].Time into the superblock's 32 unsigned bits and
// the 8 high bits.
func (w *Writer) sbTime() (uint32, uint8) {
	s := max(w.p.Time.Unix(), 0)
	return uint32(s), uint8(s >> 32)
}
