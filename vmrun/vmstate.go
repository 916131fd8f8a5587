package vmrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// vmState is a VM's state file: what c2vm ls, ssh and stop need, and what
// tells a later run whether the VM's overlay still fits its disk.
type vmState struct {
	Disk     string    `json:"disk"`
	Identity identity  `json:"identity"`
	Format   string    `json:"format"`
	Mode     string    `json:"mode"` // overlay, in-place or snapshot
	Firmware string    `json:"firmware"`
	Forwards []Forward `json:"forwards,omitempty"`
	SSHUser  string    `json:"sshUser,omitempty"`
	PID      int       `json:"pid,omitempty"`     // the c2vm process that runs the VM
	QEMUPID  int       `json:"qemuPid,omitempty"` // its QEMU
	Started  time.Time `json:"started"`
	Ended    *Ending   `json:"ended,omitempty"` // the last run's end, once it ended
}

// Modes of a run, as the state file records them.
const (
	modeOverlay  = "overlay"
	modeInPlace  = "in-place"
	modeSnapshot = "snapshot"
)

// identity tells whether a disk file is still the one an overlay was made
// on: a rebuilt disk is a new file (device and inode), and one written in
// place has a new size or modification time.
type identity struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtimeNs"`
}

func identityOf(fi os.FileInfo) identity {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return identity{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	}
	return identity{Dev: st.Dev, Ino: st.Ino, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
}

// maxStateFile bounds what is read of a state file.
const maxStateFile = 1 << 20

// readState returns the VM's state, or nil when it has none.
func (d *vmDir) readState() (*vmState, error) {
	f, err := d.root.OpenFile(stateFile, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readLimited(f, maxStateFile)
	var s vmState
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", d.file(stateFile), err)
	}
	return &s, nil
}

// writeState replaces the state file whole, so a reader never sees half
// of it.
func (d *vmDir) writeState(s *vmState) error { return writeJSON(d.root, stateFile, s) }
