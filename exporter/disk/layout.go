package disk

import (
	"fmt"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Partition type GUIDs; the root's are in arch.go.
const (
	TypeBIOSBoot = "21686148-6449-6E6F-744E-656564454649"
	TypeESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

	MiB          = int64(1) << 20
	SectorSize   = 512
	BIOSBootSize = 1 * MiB
	// espSize holds FAT32's minimum of 65525 one-sector clusters plus its
	// FATs, with room to spare; the ESP only carries GRUB's EFI image and
	// the disk's grub.cfg.
	espSize = 40 * MiB
)

// Partition is one GPT entry; offsets and sizes in bytes.
type Partition struct {
	Num         int
	Start, Size int64
	Type, Name  string
	Attrs       string
	UUID        string
}

// Layout is the disk: GPT, an optional BIOS boot partition, an optional ESP,
// and the root partition last so it can grow into a larger disk.
type Layout struct {
	DiskBytes int64
	Parts     []*Partition
	BIOSBoot  *Partition
	ESP       *Partition
	Root      *Partition
}

// NewLayout places the partitions of a disk of arch for a root filesystem
// of rootBytes. With disk > 0 the disk has that size and the root partition
// fills it.
func NewLayout(fw Firmware, arch Arch, rootBytes, disk int64) (*Layout, error) {
	l := &Layout{}
	next := MiB // the GPT and its entries live in the first MiB
	add := func(size int64, typ, name, attrs string) *Partition {
		p := &Partition{Num: len(l.Parts) + 1, Start: next, Size: size, Type: typ, Name: name, Attrs: attrs}
		l.Parts = append(l.Parts, p)
		next += size
		return p
	}
	if fw.HasBIOS() {
		l.BIOSBoot = add(BIOSBootSize, TypeBIOSBoot, "bios-boot", "")
	}
	if fw.HasUEFI() {
		l.ESP = add(espSize, TypeESP, "esp", "LegacyBIOSBootable")
	}
	rootBytes = roundUp(rootBytes, MiB)
	// The backup GPT needs the last 33 sectors; keep the last MiB for it.
	minDisk := next + rootBytes + MiB
	if disk == 0 {
		disk = minDisk
	}
	disk = roundUp(disk, MiB)
	if disk < minDisk {
		return nil, &SizeError{Given: disk, Min: minDisk}
	}
	l.Root = add(disk-next-MiB, arch.RootType(), "root", "")
	l.DiskBytes = disk
	return l, nil
}

// SizeError says a disk is too small for its content: a --size too small,
// or (Auto) c2vm's own estimate, which should not happen.
type SizeError struct {
	Given, Min int64
	Auto       bool
}

func (e *SizeError) Error() string {
	min := FormatSize(roundUp(e.Min, MiB))
	if e.Auto {
		return usererr.New(fmt.Sprintf("the root filesystem ran out of space on the %s disk sized from the image's content: c2vm's estimate fell short", FormatSize(e.Given)),
			fmt.Sprintf("pass --size %s (C2VM_DISK_SIZE through BuildKit) or more, and please report this image", min)).Error()
	}
	return usererr.New(fmt.Sprintf("disk size %s is too small for this root filesystem: it needs at least %s", FormatSize(e.Given), FormatSize(e.Min)),
		fmt.Sprintf("use --size auto, or --size %s or more", min)).Error()
}

// SfdiskScript is the partition table in sfdisk's input language.
func (l *Layout) SfdiskScript(diskUUID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\nlabel-id: %s\nunit: sectors\nsector-size: %d\nfirst-lba: 34\n", diskUUID, SectorSize)
	for _, p := range l.Parts {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=%q", p.Start/SectorSize, p.Size/SectorSize, p.Type, p.UUID, p.Name)
		if p.Attrs != "" {
			fmt.Fprintf(&b, ", attrs=%q", p.Attrs)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
