package vmrun

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Partition type GUIDs that tell how a GPT disk boots.
const (
	typeBIOSBoot = "21686148-6449-6E6F-744E-656564454649" // GRUB's core.img for BIOS
	typeESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" // EFI System Partition
)

// headBytes is how much of a disk c2vm run reads first: the MBR, the GPT
// header and its entries sit in the first MiB of any disk partitioned with
// 1 MiB alignment, and c2vm's grub.cfg at the end of its BIOS boot
// partition, in the second.
const headBytes = 2 << 20

// chooseFirmware resolves "auto": the partition table in head (the disk's
// first MiB, or readErr) decides, and the disk's c2vm.json only when the
// table cannot be read or says nothing.
func chooseFirmware(disk string, head []byte, readErr error, want string, meta *diskmeta.Meta) (string, error) {
	if want == "bios" || want == "uefi" {
		return want, nil
	}
	if readErr == nil {
		if fw, ok := firmwareFromTable(head); ok {
			return fw, nil
		}
	}
	if meta != nil {
		switch meta.Firmware {
		case "bios", "hybrid":
			return "bios", nil
		case "uefi":
			return "uefi", nil
		}
	}
	why := "its partition table does not say (no BIOS boot partition and no EFI System Partition)"
	if readErr != nil {
		why = "its partition table cannot be read: " + readErr.Error()
	}
	return "", usererr.New(fmt.Sprintf("cannot tell whether %s boots with BIOS or UEFI: %s", disk, why),
		"pass --firmware bios or --firmware uefi")
}

// firmwareFromTable reads a disk's first sectors. A GPT disk with a BIOS
// boot partition boots BIOS (c2vm's hybrid disks too: SeaBIOS is quicker
// than OVMF); one with an EFI System Partition only boots UEFI. An MBR disk
// boots BIOS when its MBR has boot code, and UEFI when it has none but an
// EFI partition (type 0xEF).
func firmwareFromTable(head []byte) (fw string, ok bool) {
	if len(head) < 1024 || head[510] != 0x55 || head[511] != 0xAA {
		return "", false
	}
	bootCode := !allZeroBytes(head[:440])
	mbrTypes := map[byte]bool{}
	for i := range 4 {
		mbrTypes[head[446+16*i+4]] = true
	}
	if mbrTypes[0xEE] {
		if types, ok := gptTypes(head); ok {
			switch {
			case types[typeBIOSBoot]:
				return "bios", true
			case types[typeESP]:
				return "uefi", true
			case bootCode:
				return "bios", true
			}
			return "", false
		}
	}
	switch {
	case bootCode:
		return "bios", true
	case mbrTypes[0xEF]:
		return "uefi", true
	}
	return "", false
}

// gptTypes returns the partition type GUIDs of the disk's GPT; ok is
// false when it has none that head holds whole.
func gptTypes(head []byte) (types map[string]bool, ok bool) {
	parts, ok := gptPartitions(head)
	if !ok {
		return nil, false
	}
	types = map[string]bool{}
	for _, p := range parts {
		types[p.typ] = true
	}
	return types, true
}

// guidString prints a GUID as stored on disk: the first three fields are
// little-endian.
func guidString(b []byte) string {
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16]))
}

func allZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readHead returns the first headBytes of the disk's contents: a raw file is read
// directly, any other format (read from its headers by inspectDisk, which
// refused images that name other files) through qemu-img dd into a
// temporary file.
func readHead(ctx context.Context, disk, format string) ([]byte, error) {
	if format == "raw" {
		f, err := os.Open(disk)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, headBytes))
		return b, err
	}
	if _, err := hosttools.Look("qemu-img"); err != nil {
		return nil, fmt.Errorf("reading a %s disk needs qemu-img (Debian package qemu-utils)", format)
	}
	tmp, err := os.MkdirTemp("", "c2vm-head-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "head.raw")
	// disk is absolute, so qemu-img reads no protocol prefix from it.
	if err := hosttools.Run(ctx, nil, nil, "qemu-img", "dd", "-f", format, "-O", "raw",
		"bs=1M", fmt.Sprint("count=", headBytes>>20), "if="+disk, "of="+out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// checkBootable refuses a disk whose first sector has no boot signature:
// no MBR, no protective MBR, so no firmware can boot it, and QEMU would
// only wait at "No bootable device".
func checkBootable(disk string, head []byte) error {
	if len(head) >= 512 && head[510] == 0x55 && head[511] == 0xAA {
		return nil
	}
	return usererr.New(fmt.Sprintf("%s is not a bootable disk: its first sector has no partition table", disk),
		"give a disk c2vm assemble or the c2vm frontend wrote, such as out/linux.img")
}
