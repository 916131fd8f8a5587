package vmrun

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// diskBoot is what the direct boot reads from a disk: c2vm's grub.cfg,
// and in the root filesystem it names, the kernel and initramfs it boots
// and the guest's boot settings.
type diskBoot struct {
	app            bool
	grubArgs       []string
	envArgs        []string
	fs             *extFS
	kernel, initrd extInode
}

// The files a system disk's grub.cfg boots first, when both are there:
// Debian's links, then Ubuntu's (exporter/grub.go, c2vm_pick). A disk
// with neither boots through the firmware, whose GRUB looks further.
var systemBootFiles = [][2]string{{"/vmlinuz", "/initrd.img"}, {"/boot/vmlinuz", "/boot/initrd.img"}}

// bootEnvFile is the guest's boot settings, which grub.cfg reads.
const bootEnvFile = "/etc/c2vm/boot.env"

// maxBootEnv bounds boot.env: GRUB's blocks are 1 KiB.
const maxBootEnv = 64 << 10

// grubOf reads c2vm's grub.cfg from the disk's first headBytes. An
// app disk's grub.cfg whose command line is refused comes with the error.
func grubOf(head []byte) (*grubBoot, []gptPart, error) {
	parts, ok := gptPartitions(head)
	if !ok {
		return nil, nil, errors.New("the disk has no GPT partition table")
	}
	cfg, err := readGrubCfg(bytes.NewReader(head), parts, int64(len(head)))
	if err != nil {
		return nil, nil, err
	}
	g, err := parseGrubCfg(cfg)
	return g, parts, err
}

// readDiskBoot finds, in the disk f of size bytes, the root filesystem
// and the files that g, its grub.cfg, boots.
func readDiskBoot(f io.ReaderAt, size int64, g *grubBoot, parts []gptPart) (*diskBoot, error) {
	d := &diskBoot{app: g.app, grubArgs: g.args}
	var err error
	if d.fs, err = findRootFS(f, parts, size, g.rootUUID); err != nil {
		return nil, err
	}
	if err := d.findFiles(g); err != nil {
		return nil, err
	}
	if d.envArgs, err = d.readBootEnv(); err != nil {
		return nil, err
	}
	return d, checkArgs(append(append([]string(nil), d.grubArgs...), d.envArgs...))
}

// readGrubCfg reads the grub.cfg that c2vm's GRUB stub reads under BIOS:
// 64 KiB at 960 KiB into partition 1, the BIOS boot partition.
func readGrubCfg(f io.ReaderAt, parts []gptPart, size int64) ([]byte, error) {
	if len(parts) == 0 || parts[0].num != 1 || parts[0].typ != typeBIOSBoot || parts[0].size < biosBootBytes ||
		parts[0].start > size-biosBootBytes {
		return nil, errors.New("the disk has no BIOS boot partition laid out as c2vm lays it out, which holds its grub.cfg")
	}
	b := make([]byte, grubCfgBytes)
	if _, err := f.ReadAt(b, parts[0].start+grubCfgOffset); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\n"), nil
}

// findRootFS finds the ext4 filesystem GRUB searches for, by its UUID.
func findRootFS(f io.ReaderAt, parts []gptPart, size int64, uuid string) (*extFS, error) {
	want, err := hex.DecodeString(strings.ReplaceAll(uuid, "-", ""))
	if err != nil || len(want) != 16 {
		return nil, fmt.Errorf("grub.cfg searches for %q, not a filesystem UUID", uuid)
	}
	for _, p := range parts {
		if p.size <= 0 || p.start > size || p.size > size-p.start || p.typ == typeBIOSBoot || p.typ == typeESP {
			continue
		}
		fs, err := openExtFS(io.NewSectionReader(f, p.start, p.size), p.size)
		if err == nil && bytes.Equal(fs.uuid[:], want) {
			return fs, nil
		}
	}
	return nil, fmt.Errorf("no ext4 filesystem on the disk has the UUID %s that grub.cfg boots", uuid)
}

// findFiles looks up the kernel and initramfs: an app disk's are regular
// files reached through no link (c2vm writes them so); a system disk's
// are its distribution's links, followed inside the filesystem.
func (d *diskBoot) findFiles(g *grubBoot) error {
	pairs := systemBootFiles
	if g.app {
		pairs = [][2]string{{g.kernel, g.initrd}}
	}
	var err error
	for _, pair := range pairs {
		if d.kernel, err = d.regularFile(pair[0], !g.app); err != nil {
			continue
		}
		if d.initrd, err = d.regularFile(pair[1], !g.app); err == nil {
			return nil
		}
	}
	return err
}

// regularFile looks up a regular file.
func (d *diskBoot) regularFile(p string, follow bool) (extInode, error) {
	n, err := d.fs.lookup(p, follow)
	if err != nil {
		return nil, err
	}
	if n.kind() != sIFREG {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return n, nil
}

// readBootEnv reads the guest's boot settings as GRUB does at boot: none
// when the file is missing.
func (d *diskBoot) readBootEnv() ([]string, error) {
	n, err := d.regularFile(bootEnvFile, true)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := d.fs.readFile(n, &b, maxBootEnv); err != nil {
		return nil, fmt.Errorf("%s: %v", bootEnvFile, err)
	}
	return bootEnvWords(b.Bytes())
}
