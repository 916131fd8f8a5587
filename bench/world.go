package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/c2vm/c2vm/vmrun"
)

// buildkit times examples/debian through docker buildx in the test world:
// a cold build (a new first step, so everything after FROM runs), an
// unchanged rebuild, and a rebuild after changing only the last line.
func (b *bench) buildkit() {
	up, err := exec.Command("./hack/testenv", "up").Output()
	if err != nil {
		b.skip("through BuildKit", "hack/testenv up failed: "+err.Error())
		return
	}
	defer exec.Command("./hack/testenv", "down").Run()
	var env []string
	for _, l := range strings.Split(string(up), "\n") {
		if kv, ok := strings.CutPrefix(l, "export "); ok {
			env = append(env, kv)
		}
	}
	image := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "C2VM_IMAGE="); ok {
			image = v
		}
	}
	base, err := os.ReadFile("examples/debian/Dockerfile")
	if err != nil {
		b.skip("through BuildKit", err.Error())
		return
	}
	ctx := filepath.Join(b.work, "ex")
	os.MkdirAll(ctx, 0o755)
	outDir := filepath.Join(b.work, "bk")
	build := "docker buildx build --progress=quiet --build-arg BUILDKIT_SYNTAX=" + image + " -o " + outDir + " " + ctx + " >/dev/null"
	// Insert the cold-build step right after FROM, so everything after it
	// runs again.
	head, rest, _ := strings.Cut(string(base), "\nFROM ")
	from, rest, _ := strings.Cut(rest, "\n")
	stamp := time.Now().UnixNano()
	write := func(first, last string) string {
		df := head + "\nFROM " + from + "\n" + first + "\n" + rest + last
		p := filepath.Join(ctx, "Dockerfile")
		return fmt.Sprintf("rm -rf %s && cat >%s <<'EOF'\n%sEOF\n", outDir, p, df)
	}
	cold, err := repeat(1, env, write(fmt.Sprintf("RUN echo %d >/etc/bench-cold", stamp), ""), build)
	if err != nil {
		b.skip("through BuildKit", firstLine(err.Error()))
		return
	}
	b.add(row{what: "BuildKit: cold build of examples/debian (1 run)", median: secs(cold.median()), note: "base image already pulled"})
	same, err := repeat(b.reps, env, "rm -rf "+outDir, build)
	if err != nil {
		b.skip("BuildKit: unchanged rebuild", firstLine(err.Error()))
		return
	}
	b.add(row{what: "BuildKit: unchanged rebuild", median: secs(same.median()), spread: same.spread(), note: "all cache hits: BuildKit copying " + mib(apparentBytes(outDir)) + " of raw output (the ≤ 3 s target is the qcow2 row's)"})
	var last series
	for i := range b.reps {
		s, err := repeat(1, env, write(fmt.Sprintf("RUN echo %d >/etc/bench-cold", stamp), fmt.Sprintf("RUN echo %d-%d >/etc/bench-last\n", stamp, i)), build)
		if err != nil {
			b.skip("BuildKit: rebuild after changing the last line", firstLine(err.Error()))
			return
		}
		last = append(last, s...)
	}
	b.add(row{what: "BuildKit: rebuild after changing the last line", median: secs(last.median()), spread: last.spread(),
		note: "target ≤ 15 s (was 42–47 s): re-runs that line, guest configuration, assembly and export; the kernel install is cached beneath the user's steps"})
	b.add(row{what: "bytes written by --output type=local (default raw)", median: mib(apparentBytes(outDir))})
	b.initramfs(filepath.Join(outDir, "linux.img"))
	// Kept for the boot rows: a disk with the frontend's slim initramfs.
	b.bkDisk = filepath.Join(b.work, "bk-debian.img")
	if _, err := runTimed(nil, "cp --sparse=always "+filepath.Join(outDir, "linux.img")+" "+b.bkDisk); err != nil {
		b.bkDisk = ""
	}
	qbuild := strings.Replace(build, " -o ", " --build-arg C2VM_FORMAT=qcow2 -o ", 1)
	if _, err := repeat(1, env, "rm -rf "+outDir, qbuild); err != nil {
		b.skip("BuildKit: unchanged rebuild, C2VM_FORMAT=qcow2", firstLine(err.Error()))
		return
	}
	q, err := repeat(b.reps, env, "rm -rf "+outDir, qbuild)
	if err != nil {
		b.skip("BuildKit: unchanged rebuild, C2VM_FORMAT=qcow2", firstLine(err.Error()))
		return
	}
	b.add(row{what: "BuildKit: unchanged rebuild, C2VM_FORMAT=qcow2", median: secs(q.median()), spread: q.spread(),
		note: "target ≤ 3 s (was 24 s); exports only " + mib(apparentBytes(outDir)) + " (the zstd qcow2 and c2vm.json)"})
}

// initramfs reports the size of the initramfs in a disk's root filesystem:
// what the firmware reads at every boot.
func (b *bench) initramfs(disk string) {
	fs, err := rootFS(disk)
	if err != nil {
		b.skip("initramfs size", err.Error())
		return
	}
	ls, err := exec.Command("debugfs", "-R", "ls -l /boot", fs).Output()
	if err != nil {
		b.skip("initramfs size", err.Error())
		return
	}
	for _, l := range strings.Split(string(ls), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && strings.HasPrefix(f[len(f)-1], "initrd.img-") {
			b.add(row{what: "initramfs of the system disk (" + f[len(f)-1] + ")", median: mib(int64(atoi(f[5]))), note: "target ≤ 12 MiB (was 36 MiB)"})
			return
		}
	}
	b.skip("initramfs size", "no /boot/initrd.img-* on the disk")
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// boot compares QEMU's time to the guest's boot for a c2vm disk with a
// direct -kernel/-initrd boot of the same kernel, initramfs and root: the
// difference is what firmware and GRUB cost. The disk is examples/debian
// as the frontend built it (its slim initramfs), booted to the login
// prompt; without the test world, the fixture assembled here, to its
// marker unit.
func (b *bench) boot(tree string) {
	disk, kernel, initrd, text := b.bkDisk, "", "", "login:"
	if disk != "" {
		var err error
		if kernel, initrd, err = extractBoot(disk, b.work); err != nil {
			b.skip("boot", err.Error())
			return
		}
	} else {
		out := filepath.Join(b.work, "boot")
		if _, err := runTimed(nil, b.c2vm+" assemble -q -o "+out+" "+tree+".tar >/dev/null"); err != nil {
			b.skip("boot", firstLine(err.Error()))
			return
		}
		disk, kernel, initrd, text = filepath.Join(out, "linux.img"), filepath.Join(tree, "vmlinuz"), filepath.Join(tree, "initrd.img"), "C2VM-MARKER"
	}
	// The same TCG threads as c2vm run gives this QEMU (vmrun.TCGAccel).
	common := []string{"-machine", "q35", "-accel", vmrun.TCGAccel(context.Background(), "qemu-system-x86_64"), "-m", "1024M", "-smp", "2", "-nographic", "-no-reboot",
		"-serial", "mon:stdio", "-snapshot", "-drive", "file=" + disk + ",format=raw,if=virtio"}
	var biosDisk series
	// Each firmware against a direct boot under the same firmware: what
	// the boot loader's path costs beyond the firmware's own start.
	for _, fw := range firmwares {
		args := append([]string{}, common...)
		if fw.code != "" {
			vars := filepath.Join(b.work, "OVMF_VARS.fd")
			if err := copyFile(fw.vars, vars); err != nil {
				b.skip("boot ("+fw.name+")", err.Error())
				continue
			}
			args = append(args, "-drive", "if=pflash,format=raw,readonly=on,file="+fw.code, "-drive", "if=pflash,format=raw,file="+vars)
		}
		if fw.secure {
			// SMM keeps the variable store from the guest; the same machine
			// as c2vm run --secure-boot.
			args[1] = "q35,smm=on" // common[1] is -machine's value
			args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		direct := append(append([]string{}, args...), "-kernel", kernel, "-initrd", initrd,
			"-append", rootArg(disk)+" rw console=tty0 console=ttyS0,115200")
		// The kernel's first console line (printed when its serial console
		// registers, early in its start) comes after the boot loader's
		// part: the same kernel with the same command line gets there the
		// same way once started. Timed to it, the overhead is free of the
		// noise of the rest of the boot, which the login rows carry.
		var ours, kern, oursK, kernK series
		for range b.reps {
			for _, c := range []struct {
				args    []string
				s, kern *series
			}{{args, &ours, &oursK}, {direct, &kern, &kernK}} {
				d, err := timeToMarkers(c.args, kernelLine, text)
				if err != nil {
					b.skip("boot ("+fw.name+")", err.Error())
					return
				}
				*c.kern = append(*c.kern, sample{wall: d[0]})
				*c.s = append(*c.s, sample{wall: d[1]})
			}
		}
		b.add(row{what: "boot to " + text + " c2vm disk (" + fw.name + ", GRUB; TCG)", median: secs(ours.median()), spread: ours.spread()})
		b.add(row{what: "boot to " + text + " direct -kernel/-initrd (" + fw.name + "; TCG)", median: secs(kern.median()), spread: kern.spread()})
		b.add(row{what: "kernel's first line: c2vm disk (" + fw.name + ", GRUB; TCG)", median: secs(oursK.median()), spread: oursK.spread()})
		b.add(row{what: "kernel's first line: direct -kernel/-initrd (" + fw.name + "; TCG)", median: secs(kernK.median()), spread: kernK.spread()})
		b.add(row{what: "boot overhead of the boot loader's path (" + fw.name + ")", median: secs(oursK.median() - kernK.median()),
			note: "target ≤ 2 s" + fw.note + "; difference of the medians to the kernel's first line"})
		if fw.code == "" {
			biosDisk = ours
		}
	}
	app := b.appBoot(tree, common, min(b.reps, 2), biosDisk)
	b.runBoots(app, disk, text)
}

// firmwares are the boot rows' firmware: SeaBIOS, OVMF, and OVMF's
// enforcing Secure Boot build with Microsoft's keys, where the disk boots
// through shim and the distribution's GRUB (and QEMU's -kernel, the direct
// row, through OVMF's own loader).
var firmwares = []struct {
	name, code, vars, note string
	secure                 bool
}{
	{name: "BIOS", note: " (was 4.3–5.9 s under BIOS, timed to the login prompt)"},
	{name: "UEFI", code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{name: "UEFI Secure Boot", code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
		note: ", shim and the distribution's GRUB against a direct boot under the same firmware", secure: true},
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// rootArg names the root as GRUB's entry does (by filesystem UUID), so
// that both boots wait for the same device: the difference is the firmware
// and boot loader alone. /dev/vda3 when the UUID cannot be read.
func rootArg(disk string) string {
	fs, err := rootFS(disk)
	if err != nil {
		return "root=/dev/vda3"
	}
	st, err := exec.Command("debugfs", "-R", "stats", fs).Output()
	if err != nil {
		return "root=/dev/vda3"
	}
	for _, l := range strings.Split(string(st), "\n") {
		if u, ok := strings.CutPrefix(l, "Filesystem UUID:"); ok {
			return "root=UUID=" + strings.TrimSpace(u)
		}
	}
	return "root=/dev/vda3"
}

// extractBoot copies the kernel and initramfs out of a disk's root
// filesystem with debugfs: /boot/vmlinuz-VERSION and its initrd.img (the
// links beside them may be missing or point anywhere; debugfs would dump a
// link, not what it points at).
func extractBoot(disk, work string) (string, string, error) {
	fs, err := rootFS(disk)
	if err != nil {
		return "", "", err
	}
	ls, err := exec.Command("debugfs", "-R", "ls -p /boot", fs).Output()
	if err != nil {
		return "", "", fmt.Errorf("debugfs ls /boot: %v", err)
	}
	version := ""
	for _, l := range strings.Split(string(ls), "\n") {
		// ls -p: /inode/mode/uid/gid/name/size/
		if f := strings.Split(l, "/"); len(f) > 5 && strings.HasPrefix(f[5], "vmlinuz-") && f[2] != "120777" {
			version = max(version, strings.TrimPrefix(f[5], "vmlinuz-"))
		}
	}
	if version == "" {
		return "", "", errors.New("no /boot/vmlinuz-VERSION on the disk")
	}
	kernel, initrd := filepath.Join(work, "vmlinuz"), filepath.Join(work, "initrd.img")
	for dst, src := range map[string]string{kernel: "/boot/vmlinuz-" + version, initrd: "/boot/initrd.img-" + version} {
		if o, err := exec.Command("debugfs", "-R", "dump "+src+" "+dst, fs).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("debugfs dump %s: %v %s", src, err, o)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Size() < 1<<20 {
			return "", "", fmt.Errorf("%s not on the disk", src)
		}
	}
	return kernel, initrd, nil
}

// appBoot times app mode: a disk holding only a static program, booted with
// c2vm's kernel (the fixture's Debian kernel), initramfs and init, until
// the program prints; next to the system disk's boot to its marker unit.
func (b *bench) appBoot(tree string, common []string, reps int, system series) string {
	dir := filepath.Join(b.work, "app")
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"C2VM-MARKER app\") }\n"), 0o644)
	gb := exec.Command("go", "build", "-o", filepath.Join(dir, "root", "prog"), src)
	gb.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := gb.CombinedOutput(); err != nil {
		b.skip("boot to program, app mode", firstLine(string(o)))
		return ""
	}
	out := filepath.Join(dir, "out")
	if _, err := runTimed(nil, b.c2vm+" assemble -q --mode app --kernel-dir "+tree+" --cmd /prog -o "+out+" "+filepath.Join(dir, "root")+" >/dev/null"); err != nil {
		b.skip("boot to program, app mode", firstLine(err.Error()))
		return ""
	}
	args := append([]string{}, common...)
	for i, a := range args {
		if strings.HasPrefix(a, "file=") {
			args[i] = "file=" + filepath.Join(out, "linux.img") + ",format=raw,if=virtio"
		}
	}
	args = append(args, "-device", "virtio-rng-pci")
	var app series
	for range reps {
		d, err := timeToMarker(args, "C2VM-MARKER")
		if err != nil {
			b.skip("boot to program, app mode", err.Error())
			return ""
		}
		app = append(app, sample{wall: d})
	}
	b.add(row{what: "boot to program, app mode (c2vm kernel and init; BIOS; TCG)", median: secs(app.median()), spread: app.spread(),
		ratio: ratio(app.median(), system.median()), note: "QEMU started by hand, through SeaBIOS and GRUB; against the system disk's boot to its marker unit above"})
	return filepath.Join(out, "linux.img")
}

// kernelLine is the kernel's first console line.
const kernelLine = "] Linux version "

// timeToMarker starts QEMU and returns when text appears on its console.
func timeToMarker(args []string, text string) (time.Duration, error) {
	d, err := timeToMarkers(args, text)
	if err != nil {
		return 0, err
	}
	return d[0], nil
}

// timeToMarkers starts QEMU and returns when each text first appeared on
// its console; it stops QEMU once all have, and fails at once when QEMU
// ends before.
func timeToMarkers(args []string, texts ...string) ([]time.Duration, error) {
	cmd := exec.Command("qemu-system-x86_64", args...)
	stdout, start, err := startOutput(cmd)
	if err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	times := make([]time.Duration, len(texts))
	done := make(chan error, 1)
	go func() {
		if err := scanTexts(stdout, start, texts, times, true); err != nil {
			done <- fmt.Errorf("QEMU ended before %q appeared: %v", texts[slices.Index(times, 0)], err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return times, nil
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("%q did not all appear within 5 minutes", texts)
	}
}

// rootFS is debugfs's name for a disk's root filesystem: its last
// partition, at that partition's byte offset.
func rootFS(disk string) (string, error) {
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	if err != nil {
		return "", fmt.Errorf("sfdisk -J %s: %v", disk, err)
	}
	var t struct {
		PartitionTable struct {
			Partitions []struct{ Start int64 }
		}
	}
	if err := json.Unmarshal(out, &t); err != nil || len(t.PartitionTable.Partitions) == 0 {
		return "", fmt.Errorf("%s: no partition table (%v)", disk, err)
	}
	p := t.PartitionTable.Partitions
	return fmt.Sprintf("%s?offset=%d", disk, p[len(p)-1].Start*512), nil
}

// startOutput starts cmd with its stdout and stderr on one pipe and
// returns it and when cmd started.
func startOutput(cmd *exec.Cmd) (io.Reader, time.Time, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	return out, start, cmd.Start()
}

// scanTexts reads r and records in times when each of texts first
// appeared, since start. It reads chunks, not lines: a login prompt ends
// without a newline; the tail kept between chunks is longer than any
// text. With stop it returns once all have appeared, else at r's end; an
// error is r's, when it ended before all appeared.
func scanTexts(r io.Reader, start time.Time, texts []string, times []time.Duration, stop bool) error {
	var seen []byte
	buf := make([]byte, 4096)
	left := len(texts)
	for {
		n, err := r.Read(buf)
		seen = append(seen, buf[:n]...)
		for i, t := range texts {
			if times[i] == 0 && strings.Contains(string(seen), t) {
				times[i] = time.Since(start)
				left--
			}
		}
		if left == 0 && stop {
			return nil
		}
		if len(seen) > 1<<16 {
			seen = seen[len(seen)-256:]
		}
		if err != nil {
			if left == 0 {
				return nil
			}
			return err
		}
	}
}
