package exporter

import (
	"fmt"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/ext4"
	"github.com/c2vm/c2vm/exporter/rootfs"
	"github.com/c2vm/c2vm/internal/usererr"
)

// RootEstimate is the root filesystem the inventory needs.
type RootEstimate struct {
	Inodes  int64 // inodes the writer gets
	Content int64 // bytes of content blocks (data, directories, links, xattrs)
	Min     int64 // smallest filesystem that holds it
	Auto    int64 // Min plus headroom for the guest's first boot
}

// Free space an auto-sized root filesystem keeps for the guest, beyond
// content/32. It is paid in export bytes, so a larger room comes from a
// larger virtual disk, which the guest grows into at boot (c2vm run makes
// one). A system keeps enough for its package indexes (apt-get update on
// Debian 12 writes about 120 MiB of lists and caches); an app, for what a
// program writes beside its image.
const (
	systemHeadroom = 160 * disk.MiB
	appHeadroom    = 32 * disk.MiB
)

// extraBlocks covers what assembly adds to the tree (first-boot units,
// app mode's kernel and initramfs are counted by the caller).
const extraBlocks = 64

// Estimate sizes the root filesystem in closed form from the inventory,
// with ext4's own accounting of its metadata; sums are checked, and a
// tree beyond what ext4 holds is an error.
func Estimate(inv *rootfs.Inventory, extraBytes, headroom int64) (RootEstimate, error) {
	// Spare inodes and blocks for what the guest creates at first boot.
	inodes := inv.Entries + inv.Entries/5 + 1024
	blocks := inv.Blocks + extraBlocks + (extraBytes+blockSize-1)/blockSize
	if blocks < inv.Blocks {
		return RootEstimate{}, errTooBig(inv)
	}
	minFS, err := ext4.MinSize(inodes, blocks)
	if err != nil {
		return RootEstimate{}, errTooBig(inv)
	}
	content := blocks * blockSize
	auto := roundUp(minFS+content/32+headroom, disk.MiB)
	if auto > disk.MaxDiskSize {
		return RootEstimate{}, errTooBig(inv)
	}
	return RootEstimate{Inodes: inodes, Content: content, Min: minFS, Auto: auto}, nil
}

func errTooBig(inv *rootfs.Inventory) error {
	return usererr.New(fmt.Sprintf("the image holds %d entries and %s of data: more than a %s disk, c2vm's limit", inv.Entries, disk.FormatSize(inv.Content), disk.FormatSize(disk.MaxDiskSize)),
		"check the image: it declares more than it could hold")

}

const blockSize = 4096

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }
