// Package ext4 writes an ext4 filesystem straight into a disk image, in one
// sequential pass and without privilege.
//
// # Use
//
// A caller sizes the filesystem first. It counts its content with
// [FileBlocks], [DirBlocks], [SymlinkBlocks] and [XattrBlocks], each an
// upper bound of what the writer uses for that entry. It counts inodes: 11
// reserved ones plus one per entry other than the root and hardlinks.
// [MinSize] then gives the smallest filesystem that holds both. It adds
// what the writer makes on its own: metadata, the journal, lost+found and
// its entry in the root.
//
// [NewWriter] starts the filesystem in a file, at the offset and size its
// [Params] give. [Writer.Create] and [Writer.Link] add entries in order:
// parents before children, hardlink targets before links. [Writer.Close]
// writes the rest. It must be called, also after an error.
//
// Every error the package returns starts with "ext4: ". Errors of a full
// filesystem wrap [ErrNoSpace].
//
// # Why our own writer
//
// mke2fs -d, the obvious tool, writes one 4 KiB block per system call
// (about 2–3× the cost of writing the same bytes as a tar file). It drops
// sub-second timestamps and every extended attribute except
// security.capability. It reads tar input only from e2fsprogs 1.47.1 on,
// through libarchive. Setting the dropped xattrs afterwards takes a
// debugfs script, whose text format is an injection hole. go-diskfs's ext4
// writer lacks hardlinks, device nodes and xattrs. This package writes
// every file's data once, in large contiguous extents, and most metadata
// at Close.
//
// # How it writes
//
// File data is laid out at increasing block addresses as it arrives, right
// after group 0's metadata and the journal. It is gathered in 1 MiB buffers
// that a second goroutine writes while the next data is read. Metadata
// known only at the end is written by [Writer.Close]: directories, extent
// tree blocks, inode tables, bitmaps, group descriptors, the superblock
// and its backups, and the journal superblock. Nothing is ever read back.
//
// Xattrs that do not fit the inode go into a block written with the inode,
// among the file data. So memory does not grow with them: the writer keeps
// a 16-byte record per block. Inodes with identical blocks share one, up
// to the kernel's 1024 users. A bounded table of block hashes finds them.
// Close writes each shared block's final user count and checksum over the
// ones it was written with.
//
// The target region must be freshly truncated: it reads as zeros and is
// sparse. The writer relies on that and never writes blocks that are all
// zeros: unused inode table blocks, the journal's body, empty bitmaps, and
// zero runs of 64 KiB or more in file data. So the image stays sparse.
//
// # The filesystem
//
// 4 KiB blocks, 256-byte inodes (extra_isize 32), 32768 blocks per group,
// flex_bg of 16 groups, 64-bit group descriptors. Features: has_journal,
// ext_attr, dir_index, filetype, extents, 64bit, flex_bg,
// metadata_csum_seed, sparse_super, large_file, huge_file, dir_nlink,
// extra_isize, metadata_csum. That is what mke2fs -t ext4 makes, minus
// orphan_file and resize_inode. Without reserved GDT blocks, the kernel's
// online resize (what systemd-growfs calls) converts the filesystem to
// meta_bg at its first growth. That needs no room reserved up front.
// GRUB's ext2 driver reads meta_bg descriptors, in 2.04 and later at
// least. No blocks are reserved for root (like mke2fs -m 0).
//
// Identical entries and [Params] give identical bytes. There is no
// randomness and no clock. Inode numbers follow the order of
// [Writer.Create] calls. The entries of a directory that fits one block
// are stored sorted by name. Larger directories are hash trees whose
// leaves are sorted by (hash, name).
package ext4
