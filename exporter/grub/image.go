package grub

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/c2vm/c2vm/exporter/disk"
)

// Where a BIOS disk keeps its grub.cfg: the last 64 KiB of the BIOS boot
// partition, padded with newlines; core.img must end before it.
const (
	biosCfgOffset  = disk.BIOSBootSize - biosCfgSize // within the BIOS boot partition
	biosCfgSize    = 64 << 10
	biosCfgSectors = biosCfgSize / disk.SectorSize
)

// Stub is the script in a platform's image. Under BIOS it reads the
// disk GRUB was started from: GRUB 2.06 names it in $cmdpath ("(hd0)"; the
// regexp keeps its name whatever follows it), GRUB 2.12 leaves $cmdpath
// empty there, and then it is hd0, the drive a BIOS boots from (it maps
// the disk it boots to 0x80). Under UEFI $cmdpath is the directory of the
// image on the ESP. Any failure leaves GRUB's command line on the console,
// with the error above.
func Stub(p Platform) string {
	head := p.consoles()
	if p == PC {
		return fmt.Sprintf("%sset c2vm_disk=hd0\nregexp --set=1:c2vm_disk '^\\(([^,)]+)' \"$cmdpath\"\nsource \"($c2vm_disk,gpt1)%d+%d\"\n",
			head, biosCfgOffset/disk.SectorSize, biosCfgSectors)
	}
	return head + "source \"$cmdpath/grub.cfg\"\n"
}

// consoles sets up the serial console beside the screen: the first lines
// of each stub, and of the grub.cfg a signed GRUB reads.
const consoles = "serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n"

// consoles are the lines that set up p's consoles. On arm64 the serial
// port is no PC COM port: GRUB's console there is the firmware's, which
// AAVMF and the clouds' firmware put on the serial port already.
func (p Platform) consoles() string {
	if p == ARM64EFI {
		return ""
	}
	return consoles
}

// memdiskTar packs a platform's Stub as GRUB's memdisk, with fixed
// times.
func memdiskTar(stub string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []string{"boot/", "boot/grub/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "boot/grub/grub.cfg", Mode: 0o644, Size: int64(len(stub)), ModTime: epoch}); err != nil {
		return nil, err
	}
	tw.Write([]byte(stub))
	err := tw.Close()
	return buf.Bytes(), err
}

// makeImage runs grub-mkimage for a platform in dir, a scratch directory,
// and returns the image.
func makeImage(ctx context.Context, dir, lib string, p Platform) ([]byte, error) {
	memdisk, err := memdiskTar(Stub(p))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "memdisk-"+string(p)+".tar"), memdisk, 0o644); err != nil {
		return nil, err
	}
	if err := runIn(ctx, dir, nil, nil, "grub-mkimage", append([]string{"-d", lib}, mkimageArgs(p)...)...); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, string(p)+".img"))
}

// mkimageArgs are grub-mkimage's arguments but the module directory: the
// output and the memdisk, named relative to the scratch directory, and the
// modules.
func mkimageArgs(p Platform) []string {
	s := string(p)
	return append([]string{"-O", s, "-o", s + ".img", "-p", "(memdisk)/boot/grub", "-m", "memdisk-" + s + ".tar"}, modules[p]...)
}

// checkImage rejects what cannot be a platform's image: a BIOS core.img
// shorter than the sector c2vm patches or reaching grub.cfg, an EFI image
// that is not a PE file.
func checkImage(p Platform, img []byte) error {
	switch {
	case p == PC && (len(img) < disk.SectorSize || int64(len(img)) > biosCfgOffset):
		return fmt.Errorf("GRUB core.img is %d bytes: it must hold a sector and end before grub.cfg, %d bytes into the BIOS boot partition", len(img), biosCfgOffset)
	case p != PC && (len(img) < 64 || string(img[:2]) != "MZ"):
		return fmt.Errorf("GRUB's EFI image (%d bytes) is not a PE file", len(img))
	}
	return nil
}
