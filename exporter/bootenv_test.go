package exporter

import (
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// boot.env goes into real directories only, and never over the image's own.
func TestBootEnvFiles(t *testing.T) {
	base := ocitest.NewTar().Dir("etc", 0o755).Dir("srv", 0o755)
	for _, c := range []struct {
		name string
		top  *ocitest.Tar
		want int // files added
	}{
		{"plain", ocitest.NewTar(), 2},
		{"dir exists", ocitest.NewTar().Dir("etc/c2vm", 0o755), 1},
		{"own boot.env", ocitest.NewTar().Dir("etc/c2vm", 0o755).File("etc/c2vm/boot.env", "mine", 0o644), 0},
		{"linked dir", ocitest.NewTar().Symlink("etc/c2vm", "/srv"), 0},
		{"file", ocitest.NewTar().File("etc/c2vm", "x", 0o644), 0},
		{"linked etc", ocitest.NewTar().Symlink("etc", "srv"), 0},
	} {
		if got := bootEnvFiles(inventoryOf(t, base, c.top)); len(got) != c.want {
			t.Errorf("%s: %d files added (%v), want %d", c.name, len(got), got, c.want)
		}
	}
	// Assembled, the file is there and GRUB's environment block header leads.
	d := assembleT(t, layoutSource(t, kernelLayer().Dir("etc", 0o755).Bytes()), Options{Firmware: disk.BIOS})
	if got, ok := d.Content("etc/c2vm/boot.env"); !ok || got != bootEnv {
		t.Errorf("boot.env on the disk: %q %v", got, ok)
	}
}
