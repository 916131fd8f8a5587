package ext4

// The on-disk structures the writer encodes, modeled on archive/tar's
// headerV7. Each structure is a byte array named after the kernel's struct
// (a byte slice where its length varies). Each of its fields is a method
// spelled exactly as the kernel's field. A field's method returns the
// field's bytes for encoding/binary to fill, or a pointer for a one-byte
// field. Only the fields the writer sets have methods. The others stay
// zero. A few methods are views the writer adds, not kernel fields: the
// entry slots of an extent node or an htree block (extentNode, dxEntries),
// the bytes a checksum covers (csummed), the in-inode xattr area (ibody)
// and the words of i_block (word). Offsets appear in this file only.
//
// The names are those of the kernel's fs/ext4/ext4.h, xattr.h,
// ext4_extents.h, namei.c and acl.h, include/uapi/linux/posix_acl_xattr.h
// and include/linux/jbd2.h. Documentation/filesystems/ext4 describes them.
// Like the Go runtime's mirrors of kernel structs, the methods keep the
// kernel's spelling, so a field can be looked up there by its name.
//
// ext4's fields are little-endian. The journal's are big-endian.

// ext4SuperBlock is struct ext4_super_block, at byte sbOffset of the
// filesystem. Backups start their block group's first block.
type ext4SuperBlock [sbSize]byte

func (s *ext4SuperBlock) s_inodes_count() []byte         { return s[0x0:][:4] }
func (s *ext4SuperBlock) s_blocks_count_lo() []byte      { return s[0x4:][:4] }
func (s *ext4SuperBlock) s_free_blocks_count_lo() []byte { return s[0xC:][:4] }
func (s *ext4SuperBlock) s_free_inodes_count() []byte    { return s[0x10:][:4] }
func (s *ext4SuperBlock) s_first_data_block() []byte     { return s[0x14:][:4] }
func (s *ext4SuperBlock) s_log_block_size() []byte       { return s[0x18:][:4] }
func (s *ext4SuperBlock) s_log_cluster_size() []byte     { return s[0x1C:][:4] }
func (s *ext4SuperBlock) s_blocks_per_group() []byte     { return s[0x20:][:4] }
func (s *ext4SuperBlock) s_clusters_per_group() []byte   { return s[0x24:][:4] }
func (s *ext4SuperBlock) s_inodes_per_group() []byte     { return s[0x28:][:4] }
func (s *ext4SuperBlock) s_wtime() []byte                { return s[0x30:][:4] }
func (s *ext4SuperBlock) s_max_mnt_count() []byte        { return s[0x36:][:2] }
func (s *ext4SuperBlock) s_magic() []byte                { return s[0x38:][:2] }
func (s *ext4SuperBlock) s_state() []byte                { return s[0x3A:][:2] }
func (s *ext4SuperBlock) s_errors() []byte               { return s[0x3C:][:2] }
func (s *ext4SuperBlock) s_lastcheck() []byte            { return s[0x40:][:4] }
func (s *ext4SuperBlock) s_rev_level() []byte            { return s[0x4C:][:4] }
func (s *ext4SuperBlock) s_first_ino() []byte            { return s[0x54:][:4] }
func (s *ext4SuperBlock) s_inode_size() []byte           { return s[0x58:][:2] }
func (s *ext4SuperBlock) s_block_group_nr() []byte       { return s[0x5A:][:2] }
func (s *ext4SuperBlock) s_feature_compat() []byte       { return s[0x5C:][:4] }
func (s *ext4SuperBlock) s_feature_incompat() []byte     { return s[0x60:][:4] }
func (s *ext4SuperBlock) s_feature_ro_compat() []byte    { return s[0x64:][:4] }
func (s *ext4SuperBlock) s_uuid() []byte                 { return s[0x68:][:16] }
func (s *ext4SuperBlock) s_volume_name() []byte          { return s[0x78:][:labelLen] }
func (s *ext4SuperBlock) s_journal_inum() []byte         { return s[0xE0:][:4] }
func (s *ext4SuperBlock) s_hash_seed() []byte            { return s[0xEC:][:16] }
func (s *ext4SuperBlock) s_def_hash_version() *uint8     { return &s[0xFC] }
func (s *ext4SuperBlock) s_jnl_backup_type() *uint8      { return &s[0xFD] }
func (s *ext4SuperBlock) s_desc_size() []byte            { return s[0xFE:][:2] }
func (s *ext4SuperBlock) s_default_mount_opts() []byte   { return s[0x100:][:4] }
func (s *ext4SuperBlock) s_mkfs_time() []byte            { return s[0x108:][:4] }
func (s *ext4SuperBlock) s_jnl_blocks() *jnlBlocks       { return (*jnlBlocks)(s[0x10C:][:len(jnlBlocks{})]) }
func (s *ext4SuperBlock) s_blocks_count_hi() []byte      { return s[0x150:][:4] }
func (s *ext4SuperBlock) s_free_blocks_count_hi() []byte { return s[0x158:][:4] }
func (s *ext4SuperBlock) s_min_extra_isize() []byte      { return s[0x15C:][:2] }
func (s *ext4SuperBlock) s_want_extra_isize() []byte     { return s[0x15E:][:2] }
func (s *ext4SuperBlock) s_flags() []byte                { return s[0x160:][:4] }
func (s *ext4SuperBlock) s_log_groups_per_flex() *uint8  { return &s[0x174] }
func (s *ext4SuperBlock) s_checksum_type() *uint8        { return &s[0x175] }
func (s *ext4SuperBlock) s_checksum_seed() []byte        { return s[0x270:][:4] }
func (s *ext4SuperBlock) s_wtime_hi() *uint8             { return &s[0x274] }
func (s *ext4SuperBlock) s_mkfs_time_hi() *uint8         { return &s[0x276] }
func (s *ext4SuperBlock) s_lastcheck_hi() *uint8         { return &s[0x277] }
func (s *ext4SuperBlock) s_checksum() []byte             { return s[0x3FC:][:4] }

// csummed is what s_checksum covers: every byte before it.
func (s *ext4SuperBlock) csummed() []byte { return s[:0x3FC] }

// jnlBlocks is s_jnl_blocks: a copy of the journal inode's i_block, then
// its i_size_high and i_size_lo, as e2fsprogs fills it.
type jnlBlocks [iBlockSize + 8]byte

func (j *jnlBlocks) i_block() *iBlock    { return (*iBlock)(j[:iBlockSize]) }
func (j *jnlBlocks) i_size_high() []byte { return j[iBlockSize:][:4] }
func (j *jnlBlocks) i_size_lo() []byte   { return j[iBlockSize+4:][:4] }

// ext4GroupDesc is struct ext4_group_desc in its 64-byte form (64bit).
type ext4GroupDesc [descSize]byte

func (d *ext4GroupDesc) bg_block_bitmap_lo() []byte      { return d[0x0:][:4] }
func (d *ext4GroupDesc) bg_inode_bitmap_lo() []byte      { return d[0x4:][:4] }
func (d *ext4GroupDesc) bg_inode_table_lo() []byte       { return d[0x8:][:4] }
func (d *ext4GroupDesc) bg_free_blocks_count_lo() []byte { return d[0xC:][:2] }
func (d *ext4GroupDesc) bg_free_inodes_count_lo() []byte { return d[0xE:][:2] }
func (d *ext4GroupDesc) bg_used_dirs_count_lo() []byte   { return d[0x10:][:2] }
func (d *ext4GroupDesc) bg_flags() []byte                { return d[0x12:][:2] }
func (d *ext4GroupDesc) bg_block_bitmap_csum_lo() []byte { return d[0x18:][:2] }
func (d *ext4GroupDesc) bg_inode_bitmap_csum_lo() []byte { return d[0x1A:][:2] }
func (d *ext4GroupDesc) bg_itable_unused_lo() []byte     { return d[0x1C:][:2] }
func (d *ext4GroupDesc) bg_checksum() []byte             { return d[0x1E:][:2] }
func (d *ext4GroupDesc) bg_block_bitmap_hi() []byte      { return d[0x20:][:4] }
func (d *ext4GroupDesc) bg_inode_bitmap_hi() []byte      { return d[0x24:][:4] }
func (d *ext4GroupDesc) bg_inode_table_hi() []byte       { return d[0x28:][:4] }
func (d *ext4GroupDesc) bg_free_blocks_count_hi() []byte { return d[0x2C:][:2] }
func (d *ext4GroupDesc) bg_free_inodes_count_hi() []byte { return d[0x2E:][:2] }
func (d *ext4GroupDesc) bg_used_dirs_count_hi() []byte   { return d[0x30:][:2] }
func (d *ext4GroupDesc) bg_itable_unused_hi() []byte     { return d[0x32:][:2] }
func (d *ext4GroupDesc) bg_block_bitmap_csum_hi() []byte { return d[0x38:][:2] }
func (d *ext4GroupDesc) bg_inode_bitmap_csum_hi() []byte { return d[0x3A:][:2] }

// ext4Inode is struct ext4_inode: the 128 bytes of the original inode
// (osd1 and osd2 in their Linux form), the extra fields after them, and
// the in-inode xattr area after i_extra_isize bytes of those.
type ext4Inode [inodeSize]byte

func (i *ext4Inode) i_mode() []byte            { return i[0:][:2] }
func (i *ext4Inode) i_uid() []byte             { return i[2:][:2] }
func (i *ext4Inode) i_size_lo() []byte         { return i[4:][:4] }
func (i *ext4Inode) i_atime() []byte           { return i[8:][:4] }
func (i *ext4Inode) i_ctime() []byte           { return i[12:][:4] }
func (i *ext4Inode) i_mtime() []byte           { return i[16:][:4] }
func (i *ext4Inode) i_gid() []byte             { return i[24:][:2] }
func (i *ext4Inode) i_links_count() []byte     { return i[26:][:2] }
func (i *ext4Inode) i_blocks_lo() []byte       { return i[28:][:4] }
func (i *ext4Inode) i_flags() []byte           { return i[32:][:4] }
func (i *ext4Inode) i_block() *iBlock          { return (*iBlock)(i[40:][:iBlockSize]) }
func (i *ext4Inode) i_file_acl_lo() []byte     { return i[104:][:4] }
func (i *ext4Inode) i_size_high() []byte       { return i[108:][:4] }
func (i *ext4Inode) l_i_blocks_high() []byte   { return i[116:][:2] }
func (i *ext4Inode) l_i_file_acl_high() []byte { return i[118:][:2] }
func (i *ext4Inode) l_i_uid_high() []byte      { return i[120:][:2] }
func (i *ext4Inode) l_i_gid_high() []byte      { return i[122:][:2] }
func (i *ext4Inode) l_i_checksum_lo() []byte   { return i[124:][:2] }
func (i *ext4Inode) i_extra_isize() []byte     { return i[goodOldInodeSize:][:2] }
func (i *ext4Inode) i_checksum_hi() []byte     { return i[130:][:2] }
func (i *ext4Inode) i_ctime_extra() []byte     { return i[132:][:4] }
func (i *ext4Inode) i_mtime_extra() []byte     { return i[136:][:4] }
func (i *ext4Inode) i_atime_extra() []byte     { return i[140:][:4] }
func (i *ext4Inode) i_crtime() []byte          { return i[144:][:4] }
func (i *ext4Inode) i_crtime_extra() []byte    { return i[148:][:4] }

// ibody is the in-inode xattr area (the kernel's IHDR): an
// ext4XattrIbodyHeader, then entries. Its place follows from the
// i_extra_isize every inode with extra fields gets.
func (i *ext4Inode) ibody() []byte { return i[goodOldInodeSize+extraIsize:] }

const (
	goodOldInodeSize = 128         // EXT4_GOOD_OLD_INODE_SIZE: where the extra fields start
	nBlocks          = 15          // EXT4_N_BLOCKS: the 32-bit words of i_block
	iBlockSize       = 4 * nBlocks // bytes of i_block
)

// iBlock is i_block: an extent tree root, a fast symlink's target or a
// device number.
type iBlock [iBlockSize]byte

// word is i_block[n].
func (b *iBlock) word(n int) []byte { return b[4*n:][:4] }

// extentNode is a node of an extent tree, in i_block or in a block: an
// ext4ExtentHeader, then eh_max entries (ext4Extent in a leaf,
// ext4ExtentIdx above), then, in a block, an ext4ExtentTail.
type extentNode []byte

func (n extentNode) header() *ext4ExtentHeader { return (*ext4ExtentHeader)(n) }
func (n extentNode) extent(k int) *ext4Extent {
	return (*ext4Extent)(n[extentHeaderSize+extentEntrySize*k:])
}
func (n extentNode) index(k int) *ext4ExtentIdx {
	return (*ext4ExtentIdx)(n[extentHeaderSize+extentEntrySize*k:])
}

// tail is the checksum of a tree block, after extentsPerBlock entries
// (EXT4_EXTENT_TAIL_OFFSET).
func (n extentNode) tail() *ext4ExtentTail { return (*ext4ExtentTail)(n[extentTailOff:]) }

// csummed is what a tree block's et_checksum covers: every byte before it.
func (n extentNode) csummed() []byte { return n[:extentTailOff] }

const (
	extentHeaderSize = 12 // sizeof(struct ext4_extent_header)
	extentEntrySize  = 12 // sizeof(struct ext4_extent), sizeof(struct ext4_extent_idx)
	extentTailSize   = 4  // sizeof(struct ext4_extent_tail)
)

// ext4ExtentHeader is struct ext4_extent_header.
type ext4ExtentHeader [extentHeaderSize]byte

func (h *ext4ExtentHeader) eh_magic() []byte      { return h[0:][:2] }
func (h *ext4ExtentHeader) eh_entries() []byte    { return h[2:][:2] }
func (h *ext4ExtentHeader) eh_max() []byte        { return h[4:][:2] }
func (h *ext4ExtentHeader) eh_depth() []byte      { return h[6:][:2] }
func (h *ext4ExtentHeader) eh_generation() []byte { return h[8:][:4] }

// ext4Extent is struct ext4_extent, a leaf entry.
type ext4Extent [extentEntrySize]byte

func (e *ext4Extent) ee_block() []byte    { return e[0:][:4] }
func (e *ext4Extent) ee_len() []byte      { return e[4:][:2] }
func (e *ext4Extent) ee_start_hi() []byte { return e[6:][:2] }
func (e *ext4Extent) ee_start_lo() []byte { return e[8:][:4] }

// ext4ExtentIdx is struct ext4_extent_idx, an index entry.
type ext4ExtentIdx [extentEntrySize]byte

func (x *ext4ExtentIdx) ei_block() []byte   { return x[0:][:4] }
func (x *ext4ExtentIdx) ei_leaf_lo() []byte { return x[4:][:4] }
func (x *ext4ExtentIdx) ei_leaf_hi() []byte { return x[8:][:2] }
func (x *ext4ExtentIdx) ei_unused() []byte  { return x[10:][:2] }

// ext4ExtentTail is struct ext4_extent_tail.
type ext4ExtentTail [extentTailSize]byte

func (t *ext4ExtentTail) et_checksum() []byte { return t[0:][:4] }

// ext4DirEntry2 is struct ext4_dir_entry_2, rec_len bytes long: the name
// follows the fixed fields.
type ext4DirEntry2 []byte

func (d ext4DirEntry2) inode() []byte     { return d[0:][:4] }
func (d ext4DirEntry2) rec_len() []byte   { return d[4:][:2] }
func (d ext4DirEntry2) name_len() *uint8  { return &d[6] }
func (d ext4DirEntry2) file_type() *uint8 { return &d[7] }
func (d ext4DirEntry2) name() []byte      { return d[direntNameOffset:] }

const direntNameOffset = 8 // offsetof(struct ext4_dir_entry_2, name)

// ext4DirEntryTail is struct ext4_dir_entry_tail, the last 12 bytes of a
// leaf block: a fake entry that holds the block's checksum.
type ext4DirEntryTail [dirTailLen]byte

func (t *ext4DirEntryTail) det_reserved_zero1() []byte { return t[0:][:4] }
func (t *ext4DirEntryTail) det_rec_len() []byte        { return t[4:][:2] }
func (t *ext4DirEntryTail) det_reserved_zero2() *uint8 { return &t[6] }
func (t *ext4DirEntryTail) det_reserved_ft() *uint8    { return &t[7] }
func (t *ext4DirEntryTail) det_checksum() []byte       { return t[8:][:4] }

// dxRoot is struct dx_root, block 0 of a hash-tree directory: the "." and
// ".." entries (fake_dirent and name each), dx_root_info, then dx_entry
// slots from dxRootEntriesOffset.
type dxRoot [blockSize]byte

func (r *dxRoot) dot() ext4DirEntry2    { return ext4DirEntry2(r[0:][:12]) }
func (r *dxRoot) dotdot() ext4DirEntry2 { return ext4DirEntry2(r[12:][:12]) }
func (r *dxRoot) info() *dxRootInfo     { return (*dxRootInfo)(r[24:][:8]) }

// dxNode is struct dx_node, an index block below the root: a fake_dirent
// that spans the block, then dx_entry slots from dxNodeEntriesOffset.
type dxNode [blockSize]byte

func (n *dxNode) fake() ext4DirEntry2 { return ext4DirEntry2(n[0:][:direntNameOffset]) }

const (
	dxRootEntriesOffset = 32 // offsetof(struct dx_root, entries)
	dxNodeEntriesOffset = 8  // offsetof(struct dx_node, entries)
)

// dxRootInfo is struct dx_root_info.
type dxRootInfo [8]byte

func (i *dxRootInfo) reserved_zero() []byte   { return i[0:][:4] }
func (i *dxRootInfo) hash_version() *uint8    { return &i[4] }
func (i *dxRootInfo) info_length() *uint8     { return &i[5] }
func (i *dxRootInfo) indirect_levels() *uint8 { return &i[6] }

// dxEntries is the dx_entry array of a root or node: limit slots, the
// first of which holds a dx_countlimit in place of its hash, then a
// dx_tail.
type dxEntries []byte

func (e dxEntries) countlimit() *dxCountlimit { return (*dxCountlimit)(e) }
func (e dxEntries) entry(k int) *dxEntry      { return (*dxEntry)(e[dxEntrySize*k:]) }
func (e dxEntries) tail(limit int) *dxTail    { return (*dxTail)(e[dxEntrySize*limit:]) }

const (
	dxEntrySize = 8 // sizeof(struct dx_entry)
	dxTailSize  = 8 // sizeof(struct dx_tail)
)

// dxCountlimit is struct dx_countlimit.
type dxCountlimit [4]byte

func (c *dxCountlimit) limit() []byte { return c[0:][:2] }
func (c *dxCountlimit) count() []byte { return c[2:][:2] }

// dxEntry is struct dx_entry.
type dxEntry [dxEntrySize]byte

func (e *dxEntry) hash() []byte  { return e[0:][:4] }
func (e *dxEntry) block() []byte { return e[4:][:4] }

// dxTail is struct dx_tail.
type dxTail [dxTailSize]byte

func (t *dxTail) dt_reserved() []byte { return t[0:][:4] }
func (t *dxTail) dt_checksum() []byte { return t[4:][:4] }

// ext4XattrHeader is struct ext4_xattr_header, the start of an xattr
// block. Entries follow it.
type ext4XattrHeader [xattrHeaderSize]byte

func (h *ext4XattrHeader) h_magic() []byte    { return h[0:][:4] }
func (h *ext4XattrHeader) h_refcount() []byte { return h[hRefcountOffset:][:4] }
func (h *ext4XattrHeader) h_blocks() []byte   { return h[8:][:4] }
func (h *ext4XattrHeader) h_hash() []byte     { return h[12:][:4] }
func (h *ext4XattrHeader) h_checksum() []byte { return h[hChecksumOffset:][:4] }

// Close patches h_refcount and h_checksum of blocks already written, at
// these offsets.
const (
	hRefcountOffset = 4  // offsetof(struct ext4_xattr_header, h_refcount)
	hChecksumOffset = 16 // offsetof(struct ext4_xattr_header, h_checksum)
)

// ext4XattrIbodyHeader is struct ext4_xattr_ibody_header, the start of the
// in-inode xattr area. Entries follow it.
type ext4XattrIbodyHeader [xattrIbodyHeaderSize]byte

func (h *ext4XattrIbodyHeader) h_magic() []byte { return h[0:][:4] }

// ext4XattrEntry is struct ext4_xattr_entry: the name follows the fixed
// fields.
type ext4XattrEntry []byte

func (e ext4XattrEntry) e_name_len() *uint8   { return &e[0] }
func (e ext4XattrEntry) e_name_index() *uint8 { return &e[1] }
func (e ext4XattrEntry) e_value_offs() []byte { return e[2:][:2] }
func (e ext4XattrEntry) e_value_inum() []byte { return e[4:][:4] }
func (e ext4XattrEntry) e_value_size() []byte { return e[8:][:4] }
func (e ext4XattrEntry) e_hash() []byte       { return e[12:][:4] }
func (e ext4XattrEntry) e_name() []byte       { return e[xattrEntryNameOffset:] }

const (
	xattrHeaderSize      = 32 // sizeof(struct ext4_xattr_header)
	xattrIbodyHeaderSize = 4  // sizeof(struct ext4_xattr_ibody_header)
	xattrEntryNameOffset = 16 // sizeof(struct ext4_xattr_entry)
)

// aclHeader is the start of an ACL: struct posix_acl_xattr_header in the
// VFS xattr format, ext4_acl_header as ext4 stores it. Entries follow it.
type aclHeader [4]byte

func (h *aclHeader) a_version() []byte { return h[0:][:4] }

// aclEntry is struct posix_acl_xattr_entry, every entry of the VFS xattr
// format. It is also ext4_acl_entry, what ext4 stores for a named user or
// group.
type aclEntry [8]byte

func (e *aclEntry) e_tag() []byte  { return e[0:][:2] }
func (e *aclEntry) e_perm() []byte { return e[2:][:2] }
func (e *aclEntry) e_id() []byte   { return e[4:][:4] }

// aclEntryShort is ext4_acl_entry_short, what ext4 stores for the owner,
// the owning group, the mask and others.
type aclEntryShort [4]byte

func (e *aclEntryShort) e_tag() []byte  { return e[0:][:2] }
func (e *aclEntryShort) e_perm() []byte { return e[2:][:2] }

// journalSuperblock is jbd2's journal_superblock_t, at the start of the
// journal's first block. Its fields are big-endian.
type journalSuperblock [1024]byte

func (j *journalSuperblock) s_header() *journalHeader { return (*journalHeader)(j[0:][:12]) }
func (j *journalSuperblock) s_blocksize() []byte      { return j[0xC:][:4] }
func (j *journalSuperblock) s_maxlen() []byte         { return j[0x10:][:4] }
func (j *journalSuperblock) s_first() []byte          { return j[0x14:][:4] }
func (j *journalSuperblock) s_sequence() []byte       { return j[0x18:][:4] }
func (j *journalSuperblock) s_uuid() []byte           { return j[0x30:][:16] }
func (j *journalSuperblock) s_nr_users() []byte       { return j[0x40:][:4] }

// journalHeader is jbd2's journal_header_t.
type journalHeader [12]byte

func (h *journalHeader) h_magic() []byte     { return h[0:][:4] }
func (h *journalHeader) h_blocktype() []byte { return h[4:][:4] }
