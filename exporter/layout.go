package exporter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Partition type GUIDs. The root type is the Discoverable Partitions
// Specification's x86-64 root, so systemd tools recognise it.
const (
	typeBIOSBoot = "21686148-6449-6E6F-744E-656564454649"
	typeESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeRootX64  = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"

	mib          = int64(1) << 20
	sectorSize   = 512
	biosBootSize = 1 * mib
	// espSize holds FAT32's minimum of 65525 one-sector clusters plus its
	// FATs, with room to spare; the ESP only carries GRUB's EFI image and
	// the disk's grub.cfg.
	espSize = 40 * mib
)

// Firmware selects which boot paths a disk carries.
type Firmware string

const (
	Hybrid Firmware = "hybrid" // BIOS and UEFI
	BIOS   Firmware = "bios"
	UEFI   Firmware = "uefi"
)

// ParseFirmware checks a --firmware value.
func ParseFirmware(s string) (Firmware, error) {
	switch f := Firmware(strings.ToLower(s)); f {
	case Hybrid, BIOS, UEFI:
		return f, nil
	}
	return "", &InputError{Msg: fmt.Sprintf("unknown firmware %q", s), Fix: "use one of hybrid, bios, uefi"}
}

func (f Firmware) bios() bool { return f == Hybrid || f == BIOS }
func (f Firmware) uefi() bool { return f == Hybrid || f == UEFI }

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

// NewLayout places the partitions for a root filesystem of rootBytes. With
// disk > 0 the disk has that size and the root partition fills it.
func NewLayout(fw Firmware, rootBytes, disk int64) (*Layout, error) {
	l := &Layout{}
	next := mib // the GPT and its entries live in the first MiB
	add := func(size int64, typ, name, attrs string) *Partition {
		p := &Partition{Num: len(l.Parts) + 1, Start: next, Size: size, Type: typ, Name: name, Attrs: attrs}
		l.Parts = append(l.Parts, p)
		next += size
		return p
	}
	if fw.bios() {
		l.BIOSBoot = add(biosBootSize, typeBIOSBoot, "bios-boot", "")
	}
	if fw.uefi() {
		l.ESP = add(espSize, typeESP, "esp", "LegacyBIOSBootable")
	}
	rootBytes = roundUp(rootBytes, mib)
	// The backup GPT needs the last 33 sectors; keep the last MiB for it.
	minDisk := next + rootBytes + mib
	if disk == 0 {
		disk = minDisk
	}
	disk = roundUp(disk, mib)
	if disk < minDisk {
		return nil, &SizeError{Given: disk, Min: minDisk}
	}
	l.Root = add(disk-next-mib, typeRootX64, "root", "")
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
	if e.Auto {
		return fmt.Sprintf("the root filesystem ran out of space on the %s disk sized from the image's content: c2vm's estimate fell short\n  fix: pass --size %s (C2VM_DISK_SIZE through BuildKit) or more, and please report this image",
			FormatSize(e.Given), FormatSize(roundUp(e.Min, mib)))
	}
	return fmt.Sprintf("disk size %s is too small for this root filesystem: it needs at least %s\n  fix: use --size auto, or --size %s or more",
		FormatSize(e.Given), FormatSize(e.Min), FormatSize(roundUp(e.Min, mib)))
}

// Disk sizes --size accepts: from 64 MiB (less holds no bootable root) to
// 64 TiB (beyond, a typo is likelier than a wish).
const (
	minDiskSize = 64 * mib
	maxDiskSize = 64 << 40
)

// ParseSize reads "auto" (0) or a positive number with an optional K, M, G
// or T suffix (powers of 1024, "iB" and "B" allowed); a bare number is bytes.
// NaN, infinities, fractions of a byte and sizes outside 64 MiB–64 TiB are
// refused with the reason.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	if t == "AUTO" || t == "" {
		return 0, nil
	}
	bad := func(why string) (int64, error) {
		return 0, &InputError{Msg: fmt.Sprintf("bad size %q: %s", s, why), Fix: "use auto, or a number with K, M, G or T, such as 8G"}
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult, t = int64(1)<<(10*(i+1)), strings.TrimSpace(t[:n-1])
		}
	}
	// Digits with at most one point: no sign, exponent, NaN or Inf.
	if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
		return bad("not a number")
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return bad("not a number")
	}
	bytes := v * float64(mult)
	switch {
	case bytes != math.Trunc(bytes):
		return bad("not a whole number of bytes")
	case bytes < float64(minDiskSize):
		return bad(fmt.Sprintf("smaller than %s, the least a bootable disk needs", FormatSize(minDiskSize)))
	case bytes > float64(maxDiskSize):
		return bad(fmt.Sprintf("larger than %s", FormatSize(maxDiskSize)))
	}
	return int64(bytes), nil
}

// FormatSize prints bytes in the largest binary unit that keeps one decimal.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<40:
		return strconv.FormatFloat(float64(n)/(1<<40), 'f', -1, 64) + "T"
	case n >= 1<<30 && n%(1<<30/10) == 0:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "G"
	case n >= 1<<20:
		return strconv.FormatInt((n+mib-1)/mib, 10) + "M"
	}
	return strconv.FormatInt(n, 10)
}

// sfdiskScript is the partition table in sfdisk's input language.
func (l *Layout) sfdiskScript(diskUUID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\nlabel-id: %s\nunit: sectors\nsector-size: %d\nfirst-lba: 34\n", diskUUID, sectorSize)
	for _, p := range l.Parts {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=%q", p.Start/sectorSize, p.Size/sectorSize, p.Type, p.UUID, p.Name)
		if p.Attrs != "" {
			fmt.Fprintf(&b, ", attrs=%q", p.Attrs)
		}
		b.WriteString("\n")
	}
	return b.String()
}
