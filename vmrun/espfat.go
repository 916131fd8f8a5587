package vmrun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A reader of just enough FAT to list the ESP's \EFI\BOOT directory,
// where the firmware's fallback boot loader tells the machine a disk is
// for (BOOTX64.EFI, BOOTAA64.EFI). The ESP is hostile input: every read
// is bounded and checked against the partition, and a chain of clusters
// ends after a fixed count whatever the FAT says.
//
// We write this reader rather than take go-diskfs's FAT package for two
// reasons. That package reads FAT32 only, and a small ESP is often FAT16.
// It also reads the whole table to open a file, while this reader needs
// one directory's names.

// Bounds on what the reader reads, far above what an ESP's directories
// need.
const (
	maxFATDirBytes    = 1 << 20 // one directory's entries
	maxFATDirClusters = 1024    // one directory's chain
)

// fatVolume is a FAT file system's geometry, from its boot sector.
type fatVolume struct {
	r           io.ReaderAt
	size        int64 // bytes of the partition
	bits        int   // 12, 16 or 32
	fatStart    int64 // byte offset of the first FAT
	rootStart   int64 // FAT12/16: byte offset of the fixed root directory
	rootBytes   int64 // FAT12/16: its length
	rootCluster uint32
	dataStart   int64 // byte offset of cluster 2
	clusterSize int64
	clusters    uint32 // data clusters: valid numbers are 2..clusters+1
}

var errNotFAT = errors.New("not a FAT file system")

// openFAT reads the boot sector of the FAT file system in r.
func openFAT(r io.ReaderAt, size int64) (*fatVolume, error) {
	bs := make([]byte, 512)
	if size < 512 {
		return nil, errNotFAT
	}
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, err
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return nil, errNotFAT
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	bps, spc, reserved, fats, rootEntries := le16(11), int64(bs[13]), le16(14), int64(bs[16]), le16(17)
	total, fatSectors := le16(19), le16(22)
	if total == 0 {
		total = le32(32)
	}
	if fatSectors == 0 {
		fatSectors = le32(36)
	}
	if !powerOfTwo(bps) || bps < 512 || bps > 4096 || !powerOfTwo(spc) || reserved == 0 || fats == 0 || fatSectors == 0 {
		return nil, errNotFAT
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	first := reserved + fats*fatSectors + rootSectors
	if total <= first || total*bps > size {
		return nil, fmt.Errorf("%w: its sizes do not fit the partition", errNotFAT)
	}
	v := &fatVolume{r: r, size: size, fatStart: reserved * bps, rootStart: (reserved + fats*fatSectors) * bps,
		rootBytes: rootSectors * bps, dataStart: first * bps, clusterSize: spc * bps,
		clusters: uint32((total - first) / spc)}
	switch {
	case v.clusters < 4085:
		v.bits = 12
	case v.clusters < 65525:
		v.bits = 16
	default:
		v.bits = 32
		v.rootCluster = uint32(le32(44))
	}
	if v.bits == 32 && rootEntries != 0 || v.bits != 32 && rootEntries == 0 {
		return nil, fmt.Errorf("%w: its root directory does not match its type", errNotFAT)
	}
	if (int64(v.clusters)+2)*int64(v.bits)/8 > fatSectors*bps {
		return nil, fmt.Errorf("%w: its FAT is too small for its clusters", errNotFAT)
	}
	return v, nil
}

func powerOfTwo(n int64) bool { return n > 0 && n&(n-1) == 0 }

// read returns n bytes at off, which must lie within the volume.
func (v *fatVolume) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || n > maxFATDirBytes || off > v.size-n {
		return nil, fmt.Errorf("a read of %d bytes at %d lies outside the file system", n, off)
	}
	b := make([]byte, n)
	if _, err := v.r.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// next is the cluster after c in its chain; ok is false at the chain's
// end, on a bad or free cluster, or a number beyond the volume.
func (v *fatVolume) next(c uint32) (uint32, bool, error) {
	var n uint32
	switch v.bits {
	case 12:
		b, err := v.read(v.fatStart+int64(c)+int64(c/2), 2)
		if err != nil {
			return 0, false, err
		}
		n = uint32(binary.LittleEndian.Uint16(b))
		if c%2 == 1 {
			n >>= 4
		}
		n &= 0xFFF
	case 16:
		b, err := v.read(v.fatStart+2*int64(c), 2)
		if err != nil {
			return 0, false, err
		}
		n = uint32(binary.LittleEndian.Uint16(b))
	default:
		b, err := v.read(v.fatStart+4*int64(c), 4)
		if err != nil {
			return 0, false, err
		}
		n = binary.LittleEndian.Uint32(b) & 0x0FFFFFFF
	}
	return n, v.validCluster(n), nil
}

func (v *fatVolume) validCluster(c uint32) bool { return c >= 2 && c-2 < v.clusters }

// dir reads a directory's raw entries: the fixed root of FAT12/16 when
// cluster is 0, else the chain from cluster.
func (v *fatVolume) dir(cluster uint32) ([]byte, error) {
	if cluster == 0 && v.bits != 32 {
		return v.read(v.rootStart, v.rootBytes)
	}
	if cluster == 0 {
		cluster = v.rootCluster
	}
	var out []byte
	for i, c, ok := 0, cluster, v.validCluster(cluster); ok; i++ {
		if i == maxFATDirClusters || int64(len(out))+v.clusterSize > maxFATDirBytes {
			return nil, errors.New("a directory's cluster chain is too long (or loops)")
		}
		b, err := v.read(v.dataStart+int64(c-2)*v.clusterSize, v.clusterSize)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		if c, ok, err = v.next(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fatEntry is a directory entry: its 8.3 name as stored (11 bytes, space
// padded, upper case) and first cluster.
type fatEntry struct {
	name    string
	dir     bool
	cluster uint32
}

// entries parses raw directory entries, skipping deleted ones, long-name
// parts and volume labels.
func (v *fatVolume) entries(raw []byte) []fatEntry {
	var out []fatEntry
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 || e[11]&0x0F == 0x0F || e[11]&0x08 != 0 {
			continue
		}
		c := uint32(binary.LittleEndian.Uint16(e[26:]))
		if v.bits == 32 {
			c |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
		}
		out = append(out, fatEntry{name: string(e[:11]), dir: e[11]&0x10 != 0, cluster: c})
	}
	return out
}

// lookDir finds the subdirectory of the directory at cluster named by its
// stored 8.3 name.
func (v *fatVolume) lookDir(cluster uint32, name string) (uint32, error) {
	raw, err := v.dir(cluster)
	if err != nil {
		return 0, err
	}
	for _, e := range v.entries(raw) {
		if e.dir && e.name == name && v.validCluster(e.cluster) {
			return e.cluster, nil
		}
	}
	return 0, fmt.Errorf("no directory %q", name)
}

// fallbackLoaders lists the files in the ESP's \EFI\BOOT by their stored
// 8.3 names ("BOOTAA64EFI").
func fallbackLoaders(r io.ReaderAt, size int64) (map[string]bool, error) {
	v, err := openFAT(r, size)
	if err != nil {
		return nil, err
	}
	efi, err := v.lookDir(0, "EFI        ")
	if err != nil {
		return nil, err
	}
	boot, err := v.lookDir(efi, "BOOT       ")
	if err != nil {
		return nil, err
	}
	raw, err := v.dir(boot)
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	for _, e := range v.entries(raw) {
		if !e.dir {
			files[e.name] = true
		}
	}
	return files, nil
}
