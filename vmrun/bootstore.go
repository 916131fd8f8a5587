package vmrun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"

	"github.com/c2vm/c2vm/internal/owndir"
)

// The direct boot's files are kept beside the VM's overlay (or in the
// run's temporary directory when the run keeps no VM), so that later runs
// of the same disk start without reading it again. What the disk holds
// is copied out once; what c2vm makes of it (the decompressed kernel, the
// slim initramfs) is made the first time a run needs it.
const (
	bootRecordFile  = "boot.json"
	bootKernelFile  = "boot-vmlinuz"    // the disk's kernel, a bzImage
	bootInitrdFile  = "boot-initrd.img" // the disk's initramfs
	bootVmlinuxFile = "boot-vmlinux"    // the kernel decompressed, with a PVH entry
	bootSlimFile    = "boot-initrd-direct.img"
)

// bootFiles are every file of the direct boot in a VM's directory.
var bootFiles = []string{bootRecordFile, bootKernelFile, bootInitrdFile, bootVmlinuxFile, bootSlimFile}

// bootRecipe changes whenever what c2vm makes of a disk changes, so that
// files an older c2vm made are made again.
const bootRecipe = 1

// States of a derived file in bootRecord; "" before a run tried.
const (
	derivedMade = "made"
	derivedNone = "none" // it cannot be made from this disk's files
)

// bootRecord says which disk the files came from and what they hold.
type bootRecord struct {
	Recipe   int      `json:"recipe"`
	Disk     string   `json:"disk"`
	Identity identity `json:"identity"`
	Format   string   `json:"format"`
	App      bool     `json:"app"`
	GrubArgs []string `json:"grubArgs"`          // grub.cfg's kernel arguments
	EnvArgs  []string `json:"envArgs,omitempty"` // /etc/c2vm/boot.env's c2vm_cmdline
	Vmlinux  string   `json:"vmlinux"`           // bootVmlinuxFile's state
	Slim     string   `json:"slim"`              // bootSlimFile, likewise
}

// fits tells whether r was made from this disk as it is now.
func (r *bootRecord) fits(disk string, id identity, format string) bool {
	return r.Recipe == bootRecipe && r.Disk == disk && r.Identity == id && r.Format == format
}

// bootStore is the directory the files live in.
type bootStore struct {
	root *os.Root
	dir  string // absolute, for QEMU
}

func (s bootStore) path(name string) string { return filepath.Join(s.dir, name) }

// maxBootRecord bounds what is read of a record.
const maxBootRecord = 1 << 20

// record returns the store's record, or nil when it has none that reads.
func (s bootStore) record() *bootRecord {
	f, err := s.root.OpenFile(bootRecordFile, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := readLimited(f, maxBootRecord)
	var r bootRecord
	if err != nil || json.Unmarshal(b, &r) != nil {
		return nil
	}
	for _, n := range []string{bootKernelFile, bootInitrdFile} {
		if !s.regular(n) {
			return nil
		}
	}
	return &r
}

func (s bootStore) regular(name string) bool {
	fi, err := s.root.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

func (s bootStore) writeRecord(r *bootRecord) error { return writeJSON(s.root, bootRecordFile, r) }

// writeJSON replaces file name of root with v as indented JSON, whole.
func writeJSON(root *os.Root, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return owndir.WriteFile(root, name, func(f *os.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}

// open opens one of the store's files for reading, never through a link.
func (s bootStore) open(name string) (*os.File, error) {
	return s.root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
