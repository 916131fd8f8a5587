package vmrun

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// The disk c2vm run is given is read-only to it: build outputs are meant
// to be uploaded, and a disk booted once carries that boot's SSH host
// keys, machine-id and logs. The guest boots a qcow2 overlay instead,
// kept in the VM's state directory (or, with --snapshot, in the run's
// temporary directory); QEMU opens the disk beneath it read-only.

// createOverlay makes the qcow2 file name in dir whose backing file is
// disk, by absolute path, read as format: qemu-img never probes the
// format, which a crafted raw disk could steer. size is the virtual size.
func createOverlay(ctx context.Context, dir, name, disk, format string, size int64) error {
	return hosttools.RunIn(ctx, dir, nil, nil, "qemu-img", "create", "-q", "-f", "qcow2",
		"-b", disk, "-F", format, name, strconv.FormatInt(size, 10))
}

// snapshotOverlay is --snapshot's overlay, in the run's temporary
// directory, which goes at the end of the run.
func (p *plan) snapshotOverlay(ctx context.Context, want int64) (string, error) {
	have, err := virtualSize(ctx, p.o.Disk, p.image.Format)
	if err != nil {
		return "", err
	}
	size := max(want, have)
	if err := createOverlay(ctx, p.work, overlayFile, p.o.Disk, p.image.Format, size); err != nil {
		return "", err
	}
	p.drive, p.driveFormat = filepath.Join(p.work, overlayFile), "qcow2"
	return fmt.Sprintf("c2vm: the guest sees a %s disk (%s) whose writes are discarded at exit (--snapshot)", human(size), sizeOrigin(have, size)), nil
}

// vmOverlay makes or reuses the VM's overlay. One made on another disk,
// or on this disk before it changed, no longer fits: an unnamed VM starts
// afresh, a named one is refused.
func (p *plan) vmOverlay(ctx context.Context, want int64) (string, error) {
	d := p.vm
	have, err := virtualSize(ctx, p.o.Disk, p.image.Format)
	if err != nil {
		return "", err
	}
	size := max(want, have)
	p.drive, p.driveFormat = d.file(overlayFile), "qcow2"
	afresh := ""
	if d.regular(overlayFile) {
		if p.prev != nil && p.prev.Mode == modeOverlay && p.prev.Identity == p.id && p.prev.Format == p.image.Format {
			return p.growOverlay(ctx, size)
		}
		if p.o.Name != "" {
			return "", usererr.New(fmt.Sprintf("%s changed since VM %s was made from it, so the VM's overlay no longer fits it", p.o.Disk, d.name),
				fmt.Sprintf("c2vm rm %s starts the VM afresh; or give this run another --name", d.name))
		}
		if err := d.removeFiles(append([]string{overlayFile, varsFile, secbootVarsFile, aavmfVarsFile, knownHostsFile}, bootFiles...)...); err != nil {
			return "", err
		}
		afresh = fmt.Sprintf("c2vm: %s changed since VM %s was made from it: starting the VM afresh\n", p.o.Disk, d.name)
	}
	if err := createOverlay(ctx, d.path, overlayFile, p.o.Disk, p.image.Format, size); err != nil {
		return "", err
	}
	return afresh + fmt.Sprintf("c2vm: VM %s: new, on a %s overlay (%s) in %s; %s stays unchanged (c2vm rm %s starts over)",
		d.name, human(size), sizeOrigin(have, size), d.path, filepath.Base(p.o.Disk), d.name), nil
}

// growOverlay gives a reused overlay at least size bytes.
func (p *plan) growOverlay(ctx context.Context, size int64) (string, error) {
	d := p.vm
	cur, err := virtualSize(ctx, p.drive, "qcow2")
	if err != nil {
		return "", err
	}
	grown := ""
	if cur < size {
		if err := hosttools.RunIn(ctx, d.path, nil, nil, "qemu-img", "resize", "-q", "-f", "qcow2", overlayFile, strconv.FormatInt(size, 10)); err != nil {
			return "", err
		}
		grown = fmt.Sprintf(" (grown from %s by --disk-size)", human(cur))
		cur = size
	}
	return fmt.Sprintf("c2vm: VM %s continues from its last run, on its %s overlay%s in %s (c2vm rm %s starts over)",
		d.name, human(cur), grown, d.path, d.name), nil
}

// sizeOrigin says where a guest's disk size came from.
func sizeOrigin(have, size int64) string {
	if size > have {
		return fmt.Sprintf("the disk's %s, grown by --disk-size", human(have))
	}
	return "the disk's own size"
}
