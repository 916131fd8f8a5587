package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// runBoots times boots the way a user starts them, through c2vm run: the
// app disk to its program's output through the firmware and GRUB against
// the direct kernel boot, in turns, and a system disk to sysText (its
// login prompt, or its marker unit) both ways. Each run is a VM of its
// own, kept between its runs, as c2vm run DISK keeps one: the direct
// boot's first run prepares the disk's kernel and initramfs, which its
// later runs take as they are; that first run is a row of its own.
func (b *bench) runBoots(appDisk, sysDisk, sysText string) {
	env := []string{"XDG_STATE_HOME=" + filepath.Join(b.work, "state")}
	if appDisk == "" {
		b.skip("app mode through c2vm run", "no app disk")
	} else {
		b.runAppBoots(env, appDisk)
	}
	if sysDisk == "" {
		b.skip("system boot through c2vm run", "no system disk")
		return
	}
	b.runSystemBoots(env, sysDisk, sysText)
}

func (b *bench) runAppBoots(env []string, disk string) {
	first, err := runToMarker(b.c2vm, env, "C2VM-MARKER", "--name", "bench-app-direct", "--boot", "auto", disk)
	if err != nil {
		b.skip("app mode through c2vm run", err.Error())
		return
	}
	var fw, direct, fwExit, directExit series
	for range b.reps {
		for _, c := range []struct {
			name, boot   string
			marker, exit *series
		}{{"bench-app-firmware", "firmware", &fw, &fwExit}, {"bench-app-direct", "auto", &direct, &directExit}} {
			t, err := runToMarker(b.c2vm, env, "C2VM-MARKER", "--name", c.name, "--boot", c.boot, disk)
			if err != nil {
				b.skip("app mode through c2vm run, --boot "+c.boot, err.Error())
				return
			}
			*c.marker, *c.exit = append(*c.marker, sample{wall: t[0]}), append(*c.exit, sample{wall: t[1]})
		}
	}
	b.add(row{what: "app mode: boot to program through c2vm run, firmware path (--boot firmware)", median: secs(fw.median()), spread: fw.spread(),
		note: "SeaBIOS, GRUB (linux16), the disk's initramfs; c2vm run's own work included (overlay, QEMU's start); exit after " + secs(fwExit.median())})
	b.add(row{what: "app mode: boot to program through c2vm run, direct kernel path (default)", median: secs(direct.median()), spread: direct.spread(),
		ratio: ratio(direct.median(), fw.median()), note: "in turns with the row above; exit after " + secs(directExit.median())})
	b.add(row{what: "app mode: direct / firmware path", ratio: ratio(direct.median(), fw.median()), note: "target ≤ 0.50×"})
	b.add(row{what: "app mode: the direct path's first run of a disk", median: secs(first[0]),
		note: "prepares the disk's kernel (decompressed) and initramfs (slim) once, in the VM's directory"})
}

func (b *bench) runSystemBoots(env []string, disk, text string) {
	var fw, direct series
	for range min(b.reps, 2) {
		for _, c := range []struct {
			name, boot string
			s          *series
		}{{"bench-sys-firmware", "firmware", &fw}, {"bench-sys-kernel", "kernel", &direct}} {
			t, err := runToMarker(b.c2vm, env, text, "--name", c.name, "--boot", c.boot, "--expect", text, "--quit-on-expect", disk)
			if err != nil {
				b.skip("system boot through c2vm run, --boot "+c.boot, err.Error())
				return
			}
			*c.s = append(*c.s, sample{wall: t[0]})
		}
	}
	b.add(row{what: "system boot to " + text + " through c2vm run (firmware path, the default)", median: secs(fw.median()), spread: fw.spread()})
	b.add(row{what: "system boot to " + text + " through c2vm run (--boot kernel)", median: secs(direct.median()), spread: direct.spread(),
		ratio: ratio(direct.median(), fw.median()), note: "the distribution's /vmlinuz and /initrd.img, started by QEMU; in turns with the row above"})
}

// runToMarker runs c2vm run with args and returns how long text took to
// appear on its output and the run to end.
func runToMarker(c2vm string, env []string, text string, args ...string) ([2]time.Duration, error) {
	var t [2]time.Duration
	cmd := exec.Command(c2vm, append([]string{"run", "--timeout", "300s"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, start, err := startOutput(cmd)
	if err != nil {
		return t, err
	}
	serr := scanTexts(out, start, []string{text}, t[:1], false)
	err = cmd.Wait()
	t[1] = time.Since(start)
	if serr != nil {
		return t, fmt.Errorf("%q did not appear (c2vm run: %v)", text, err)
	}
	return t, nil
}
