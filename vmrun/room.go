package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Room to work. Disks are exported as small as their content (their bytes
// cost export time), and a guest then has little free space. c2vm run
// gives the guest a larger virtual disk, which c2vm's disks grow into at
// boot (systemd-repart and systemd-growfs): the overlay the guest boots is
// made that large; with --in-place the disk file itself grows, sparse for
// raw and through qemu-img resize for the others, so no byte is written.

// DefaultDiskSize is the least virtual size a guest gets.
const DefaultDiskSize = "8G"

var diskSizeSyntax = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT])?(?:I?B)?$`)

// parseDiskSize reads --disk-size: "keep" (or 0) leaves the disk as it is.
func parseDiskSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "keep" || s == "0" {
		return 0, nil
	}
	m := diskSizeSyntax.FindStringSubmatch(strings.ToUpper(s))
	bad := usererr.New(fmt.Sprintf("bad disk size %q", s), "give N with K, M, G or T (such as 20G), or keep")
	if m == nil {
		return 0, bad
	}
	v, err := strconv.ParseFloat(m[1], 64)
	unit := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m[2]]
	if err != nil || v*unit < 64<<20 || v*unit > 64<<40 {
		return 0, usererr.New(fmt.Sprintf("disk size %s is out of range", s), "give between 64M and 64T, or keep")
	}
	return int64(v*unit) / (1 << 20) * (1 << 20), nil
}

// planDrive decides the file the guest boots, at least want bytes large
// (0: as it is), and returns a line to print.
func (p *plan) planDrive(ctx context.Context, want int64) (string, error) {
	switch {
	case p.o.InPlace:
		p.drive, p.driveFormat = p.o.Disk, p.image.Format
		note, err := p.growInPlace(ctx, want)
		warning := fmt.Sprintf("c2vm: warning: --in-place: the guest writes %s itself. A disk booted once carries that boot's SSH host keys, machine-id and logs into every VM made from it: do not upload it as an image (run without --in-place to keep it unchanged)", p.o.Disk)
		return strings.TrimPrefix(note+"\n"+warning, "\n"), err
	case p.o.Snapshot:
		return p.snapshotOverlay(ctx, want)
	}
	return p.vmOverlay(ctx, want)
}

// growInPlace grows --in-place's disk file to want bytes when it is
// smaller; a disk that cannot grow boots as it is.
func (p *plan) growInPlace(ctx context.Context, want int64) (string, error) {
	disk, format := p.o.Disk, p.image.Format
	if want == 0 {
		return "", nil
	}
	have, err := virtualSize(ctx, disk, format)
	if err != nil || have >= want {
		return "", err
	}
	if format == "raw" {
		err = os.Truncate(disk, want)
	} else {
		err = hosttools.Run(ctx, nil, nil, "qemu-img", "resize", "-q", "-f", format, disk, strconv.FormatInt(want, 10))
	}
	if err != nil {
		return fmt.Sprintf("c2vm: could not grow %s to %s (%v); it boots at %s", filepath.Base(disk), human(want), firstLine(err.Error()), human(have)), nil
	}
	return fmt.Sprintf("c2vm: grew %s from %s to %s (sparse; --disk-size keep leaves it as it is); the guest's root grows into it at boot", filepath.Base(disk), human(have), human(want)), nil
}

// virtualSize asks qemu-img what size a disk has to its guest.
func virtualSize(ctx context.Context, disk, format string) (int64, error) {
	if format == "raw" {
		fi, err := os.Stat(disk)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	qemuImg, err := hosttools.Look("qemu-img")
	if err != nil {
		return 0, err
	}
	out, err := exec.CommandContext(ctx, qemuImg, "info", "--output=json", "-f", format, disk).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %v", disk, err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return 0, err
	}
	return info.VirtualSize, nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%dM", (n+1<<20-1)>>20)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
