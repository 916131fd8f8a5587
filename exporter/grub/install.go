package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path"
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
// stub reads it; or, for a signed chain, shim as the boot file with the
// distribution's GRUB beside it.
type ESP struct {
	Platform Platform
	Image    []byte // c2vm's GRUB, or the distribution's signed GRUB when Signed is set
	Config   string
	Serial   uint32     // the FAT volume serial, derived from the content
	Epoch    *time.Time // SOURCE_DATE_EPOCH, or nil
	Signed   *Signed
}

// Signed is the rest of a signed chain. shim loads grubx64.efi from its own
// directory (and mmx64.efi, MokManager, when a key is to be enrolled). The
// distribution's GRUB reads grub.cfg from EFI/<Vendor>, its built-in
// prefix, and otherwise from its own directory; both get it. fbx64.efi,
// shim's fallback that writes boot entries, is left out: without it shim
// boots GRUB straight from the removable-media path.
type Signed struct {
	Shim       []byte
	MokManager []byte // nil: none
	Vendor     string // a plain directory name, or ""
}

// espFile is one file of the ESP, by its path there.
type espFile struct {
	path string // under ::/EFI
	data []byte
}

// files are the ESP's files: the boot file and grub.cfg, and a signed
// chain's other parts. The signed GRUB has no stub, so its grub.cfg sets
// up the consoles itself.
func (e ESP) files() []espFile {
	boot := "BOOT/" + e.Platform.efiBootName()
	if e.Signed == nil {
		return []espFile{{boot, e.Image}, {"BOOT/grub.cfg", []byte(e.Config)}}
	}
	cfg := []byte(consoles + e.Config)
	fs := []espFile{{boot, e.Signed.Shim}, {"BOOT/grubx64.efi", e.Image}, {"BOOT/grub.cfg", cfg}}
	if e.Signed.MokManager != nil {
		fs = append(fs, espFile{"BOOT/mmx64.efi", e.Signed.MokManager})
	}
	if e.Signed.Vendor != "" && e.Signed.Vendor != "boot" {
		fs = append(fs, espFile{e.Signed.Vendor + "/grub.cfg", cfg})
	}
	return fs
}

// WriteESP makes the FAT32 ESP of layout l in place in raw (a file name
// relative to work, a scratch directory) and copies the boot files to the
// removable-media path every UEFI firmware tries.
func WriteESP(ctx context.Context, work, raw string, l *disk.Layout, e ESP) error {
	esp := l.ESP
	sector := esp.Start / disk.SectorSize
	if err := runIn(ctx, work, nil, nil, "mkfs.vfat", "--invariant", "-F", "32", "-s", "1", "-n", "ESP",
		"-i", fmt.Sprintf("%08X", e.Serial), "--offset", fmt.Sprint(sector), "-h", fmt.Sprint(sector),
		raw, fmt.Sprint(esp.Size/1024)); err != nil {
		return err
	}
	img := fmt.Sprintf("%s@@%d", raw, esp.Start)
	env := []string{"MTOOLS_SKIP_CHECK=1", "TZ=UTC0", "SOURCE_DATE_EPOCH=" + fatEpoch(e.Epoch)}
	dirs := []string{"::/EFI"}
	seen := map[string]bool{}
	for _, f := range e.files() {
		if d := path.Dir(f.path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, "::/EFI/"+d)
		}
	}
	if err := runIn(ctx, work, nil, env, "mmd", append([]string{"-i", img}, dirs...)...); err != nil {
		return err
	}
	for i, f := range e.files() {
		// Scratch names: the ESP's names are c2vm's, but they stay off
		// the command line as file names in work all the same.
		src := fmt.Sprintf("esp-%d", i)
		if err := os.WriteFile(filepath.Join(work, src), f.data, 0o644); err != nil {
			return err
		}
		if err := runIn(ctx, work, nil, env, "mcopy", "-i", img, src, "::/EFI/"+f.path); err != nil {
			return err
		}
	}
	return nil
}

// efiBootName is the removable-media file name of a UEFI platform.
func (p Platform) efiBootName() string {
	return map[Platform]string{AMD64EFI: "BOOTX64.EFI", ARM64EFI: "BOOTAA64.EFI"}[p]
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
