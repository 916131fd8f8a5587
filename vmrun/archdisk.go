package vmrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/internal/hosttools"
)

// maxESPBytes bounds how much of an ESP c2vm run copies out of a disk
// that is not raw to tell its machine: c2vm's ESPs are 40 MiB, and the
// directories it reads sit at the start of any ESP that mkfs.vfat and
// mtools wrote. A larger ESP (Ubuntu's 106 MiB, Fedora's 600 MiB) keeps
// its own size for the FAT's geometry; a read past the copy is an error.
const maxESPBytes = 64 << 20

// archFromDisk tells a disk's machine from its partitions (head is its
// first headBytes): a BIOS boot partition is x86's; an ESP whose fallback
// loader is BOOTAA64.EFI, with no BOOTX64.EFI, is arm64's, and one with
// BOOTX64.EFI amd64's. ok is false when neither shows.
func archFromDisk(ctx context.Context, disk, format string, head []byte) (arch string, ok bool) {
	parts, ok := gptPartitions(head)
	if !ok {
		return "", false
	}
	var esp *gptPart
	for i, p := range parts {
		switch {
		case p.typ == typeBIOSBoot:
			return archAMD64, true
		case p.typ == typeESP && p.size > 0 && esp == nil:
			esp = &parts[i]
		}
	}
	if esp == nil {
		return "", false
	}
	files, err := espLoaders(ctx, disk, format, esp.start, esp.size)
	if err != nil {
		return "", false
	}
	return archFromLoaders(files)
}

// archFromLoaders reads the machine from the fallback loaders' names.
func archFromLoaders(files map[string]bool) (string, bool) {
	switch arm, x86 := files["BOOTAA64EFI"], files["BOOTX64 EFI"]; {
	case x86:
		return archAMD64, true
	case arm:
		return archARM64, true
	}
	return "", false
}

// espLoaders lists the \EFI\BOOT of the ESP of size bytes at off in the
// disk: in place for a raw disk, else from a copy of its first
// maxESPBytes that qemu-img makes. A panic (the reader's bug meeting a
// disk it did not foresee) is an error.
func espLoaders(ctx context.Context, disk, format string, off, size int64) (files map[string]bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			files, err = nil, fmt.Errorf("reading the ESP failed: %v", r)
		}
	}()
	if format == "raw" {
		f, err := os.Open(disk)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return fallbackLoaders(io.NewSectionReader(f, off, size), size)
	}
	n := min(size, maxESPBytes)
	tmp, err := os.MkdirTemp("", "c2vm-esp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "esp.raw")
	bs := ddBlock(off, n)
	// qemu-img dd (7.2 measured) stops at block count counted from the
	// disk's start, not from skip: the copy then holds the n bytes at off.
	// disk is absolute, so qemu-img reads no protocol prefix from it.
	if err := hosttools.Run(ctx, nil, nil, "qemu-img", "dd", "-f", format, "-O", "raw", fmt.Sprint("bs=", bs),
		fmt.Sprint("skip=", off/bs), fmt.Sprint("count=", (off+n)/bs), "if="+disk, "of="+out); err != nil {
		return nil, err
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A qemu-img that counts from skip copies more: only its first n
	// bytes are read.
	return fallbackLoaders(io.NewSectionReader(f, 0, n), size)
}

// ddBlock is the largest block, at most 1 MiB, that divides both off and
// n: qemu-img dd counts in blocks.
func ddBlock(off, n int64) int64 {
	bs := int64(1 << 20)
	for bs > 1 && (off%bs != 0 || n%bs != 0) {
		bs /= 2
	}
	return bs
}
