package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
)

// biosConfig is a disk's grub.cfg as the BIOS stub reads it: padded with
// newlines to its area.
func biosConfig(cfg string) ([]byte, error) {
	if len(cfg) >= biosCfgSize {
		return nil, fmt.Errorf("grub.cfg is %d bytes, more than the %d the BIOS boot partition keeps for it", len(cfg), biosCfgSize-1)
	}
	b := bytes.Repeat([]byte{'\n'}, biosCfgSize)
	copy(b, cfg)
	return b, nil
}

// InstallBIOS writes core.img and the disk's grub.cfg into the BIOS boot
// partition and GRUB's boot.img into the MBR, patched with where core.img
// sits, as grub-install would on a real disk.
func InstallBIOS(img *os.File, l *disk.Layout, core []byte, cfg string) error {
	dir, err := PC.Dir()
	if err != nil {
		return err
	}
	boot, err := os.ReadFile(filepath.Join(dir, "boot.img"))
	if err != nil {
		return fmt.Errorf("reading GRUB's boot.img: %w", err)
	}
	if len(boot) != disk.SectorSize {
		return fmt.Errorf("GRUB's boot.img is %d bytes, not one sector", len(boot))
	}
	if l.BIOSBoot.Size != disk.BIOSBootSize || l.BIOSBoot.Num != 1 {
		return fmt.Errorf("the BIOS boot partition is number %d of %d bytes: GRUB's stub reads partition 1 of %d", l.BIOSBoot.Num, l.BIOSBoot.Size, disk.BIOSBootSize)
	}
	if err := checkImage(PC, core); err != nil {
		return err
	}
	bc, err := biosConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := img.WriteAt(bc, l.BIOSBoot.Start+biosCfgOffset); err != nil {
		return err
	}
	coreLBA := uint64(l.BIOSBoot.Start / disk.SectorSize)
	core = append([]byte{}, core...)
	// diskboot.img's first blocklist: the rest of core.img starts one sector on.
	binary.LittleEndian.PutUint64(core[500:], coreLBA+1)
	if _, err := img.WriteAt(core, l.BIOSBoot.Start); err != nil {
		return err
	}
	// boot.img's code up to the disk signature, keeping sfdisk's protective
	// MBR partition table; then the LBA of core.img at 0x5c.
	mbr := make([]byte, 440)
	copy(mbr, boot[:440])
	binary.LittleEndian.PutUint64(mbr[0x5c:], coreLBA)
	_, err = img.WriteAt(mbr, 0)
	return err
}

// ESP is what WriteESP puts on a disk's EFI System Partition: GRUB's image
// for the platform and the disk's grub.cfg beside it, where the image's
// stub reads it.
type ESP struct {
	Platform Platform
	Image    []byte
	Config   string
	Serial   uint32     // the FAT volume serial, derived from the content
	Epoch    *time.Time // SOURCE_DATE_EPOCH, or nil
}

// WriteESP makes the FAT32 ESP of layout l in place in raw (a file name
// relative to work, a scratch directory) and copies GRUB's image to the
// removable-media path every UEFI firmware tries.
func WriteESP(ctx context.Context, work, raw string, l *disk.Layout, e ESP) error {
	esp := l.ESP
	sector := esp.Start / disk.SectorSize
	if err := runIn(ctx, work, nil, nil, "mkfs.vfat", "--invariant", "-F", "32", "-s", "1", "-n", "ESP",
		"-i", fmt.Sprintf("%08X", e.Serial), "--offset", fmt.Sprint(sector), "-h", fmt.Sprint(sector),
		raw, fmt.Sprint(esp.Size/1024)); err != nil {
		return err
	}
	boot := e.Platform.efiBootName()
	if err := os.WriteFile(filepath.Join(work, boot), e.Image, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "grub.cfg"), []byte(e.Config), 0o644); err != nil {
		return err
	}
	img := fmt.Sprintf("%s@@%d", raw, esp.Start)
	env := []string{"MTOOLS_SKIP_CHECK=1", "TZ=UTC0", "SOURCE_DATE_EPOCH=" + fatEpoch(e.Epoch)}
	if err := runIn(ctx, work, nil, env, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	return runIn(ctx, work, nil, env, "mcopy", "-i", img, boot, "grub.cfg", "::/EFI/BOOT/")
}

// efiBootName is the removable-media file name of a UEFI platform.
func (p Platform) efiBootName() string {
	return map[Platform]string{AMD64EFI: "BOOTX64.EFI"}[p]
}

// fatEpoch is the time mtools stamps on the ESP's files: SOURCE_DATE_EPOCH
// when set, never before 1980-01-01, the first time FAT can store (an
// earlier one wraps to 2098). With TZ=UTC0 the bytes do not depend on the
// builder's time zone (FAT stores local time).
func fatEpoch(epoch *time.Time) string {
	const fat1980 = 315532800
	if epoch == nil || epoch.Unix() < fat1980 {
		return strconv.Itoa(fat1980)
	}
	return strconv.FormatInt(epoch.Unix(), 10)
}
