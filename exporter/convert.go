package exporter

import (
	"context"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/diskformat"
)

// Convert writes format f of the raw disk as dst (both relative to dir),
// with Commands' virtual size rule, then replaces the random identifiers
// qemu-img wrote with ones derived from the raw disk (stableIDs).
func Convert(ctx context.Context, dir string, f disk.Format, raw, dst string, minVirtual int64) error {
	st, err := os.Stat(filepath.Join(dir, raw))
	if err != nil {
		return err
	}
	cmds := f.Commands(raw, dst, st.Size(), minVirtual)
	for _, argv := range cmds {
		if err := runIn(ctx, dir, nil, nil, argv[0], argv[1:]...); err != nil {
			return err
		}
	}
	if f.Make != disk.MakeQemu || len(cmds) == 0 {
		return nil
	}
	return stableIDs(filepath.Join(dir, raw), filepath.Join(dir, dst), f.QemuFmt)
}

// stableIDs makes qemu-img's output at dst, of qemu-img format qemuFmt,
// a function of the raw disk it was made from: the identifiers qemu-img
// draws at random are derived from the raw disk's GPT disk GUID (itself
// derived from the build's input), and a VHD's time stamp is
// SOURCE_DATE_EPOCH when set. Formats without such fields are left alone.
//
// A raw disk without a GPT header (not one c2vm assembled: tests convert
// such disks) has nothing to derive them from, and keeps qemu-img's.
func stableIDs(raw, dst, qemuFmt string) error {
	if !diskformat.HasRandomIDs(qemuFmt) {
		return nil
	}
	seed, err := gptDiskGUID(raw)
	if err != nil || seed == nil {
		return err
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return err
	}
	return diskformat.StableIDs(dst, qemuFmt, seed, epoch)
}

// The primary GPT header is LBA 1; its disk GUID is at byte 56 of it.
const (
	gptHeaderOffset = 512
	gptSignature    = "EFI PART"
	gptOffDiskGUID  = 56
)

// gptDiskGUID reads the raw disk's GPT disk GUID, nil without a GPT
// header.
func gptDiskGUID(raw string) ([]byte, error) {
	f, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := make([]byte, gptOffDiskGUID+16)
	if _, err := f.ReadAt(h, gptHeaderOffset); err != nil {
		return nil, err
	}
	if string(h[:len(gptSignature)]) != gptSignature {
		return nil, nil
	}
	return h[gptOffDiskGUID:], nil
}
