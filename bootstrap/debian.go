package bootstrap

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

var (
	supportedDebian = map[string]bool{"11": true, "12": true, "13": true}
	supportedUbuntu = map[string]bool{"20.04": true, "22.04": true, "24.04": true}
)

// debian covers Debian and Ubuntu: apt, initramfs-tools, systemd.
type debian struct {
	os     OSRelease
	ubuntu bool
}

func (d debian) Name() string {
	if d.ubuntu {
		return "ubuntu"
	}
	return "debian"
}

// kernelPackage is a kernel meant for virtual machines. Debian's generic
// kernel has the virtio drivers as modules; Ubuntu's linux-image-virtual has
// them built in.
func (d debian) kernelPackage(arch string) string {
	if d.ubuntu {
		return "linux-image-virtual"
	}
	if arch == "arm64" {
		return "linux-image-arm64"
	}
	return "linux-image-amd64"
}

// initramfsModules are the storage and filesystem drivers of common
// hypervisors: QEMU/KVM (virtio blk, scsi, pci), emulated SATA, IDE and
// NVMe, Hyper-V (vmbus, storvsc), VMware (pvscsi, LSI mptspi), Xen; sd_mod
// for the SCSI-like ones; ext4 and the checksum its metadata needs.
var initramfsModules = []string{"virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "nvme",
	"hv_vmbus", "hv_storvsc", "vmw_pvscsi", "mptspi", "xen-blkfront", "ext4", "crc32c"}

// arm64InitramfsModules are those of arm64 machines: QEMU's virt machine
// (virtio over PCI or MMIO), NVMe (AWS Graviton, Google's Tau T2A, Apple
// silicon hypervisors), SATA, and Hyper-V (Azure); no PC-only driver.
var arm64InitramfsModules = []string{"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "ahci", "sd_mod", "nvme",
	"hv_vmbus", "hv_storvsc", "ext4", "crc32c"}

// modulesFor are the initramfs's storage drivers on arch.
func modulesFor(arch string) []string {
	if arch == "arm64" {
		return arm64InitramfsModules
	}
	return initramfsModules
}

// compress is the initramfs compression: zstd, except for Ubuntu 20.04,
// whose 5.4 kernel cannot unpack it.
func (d debian) compress() string {
	if d.ubuntu && d.os.VersionID == "20.04" {
		return "lz4"
	}
	return "zstd"
}

// installScript installs the kernel, systemd as init, udev and an initramfs
// that loads the virtio and ext4 drivers early. systemd-resolved and
// systemd-repart are separate packages on newer releases; they are added
// where the archive has them. more are the packages the access options
// need (Access.packages: constant names, never user input).
func (d debian) installScript(arch string, more []string, epoch string) string {
	before, after := "", ""
	if epoch != "" {
		before, after = keepRunLogs()
	}
	return strings.Join([]string{
		"set -eu",
		before,
		"export DEBIAN_FRONTEND=noninteractive",
		// Docker images delete downloaded packages after each install; the
		// cache mounts are there to keep them.
		"rm -f /etc/apt/apt.conf.d/docker-clean",
		// A slim initramfs: only what mounting the root needs on common
		// hypervisors (initramfs-tools' MODULES=list, with dependencies);
		// udev loads everything else from the root. Every byte of it is
		// read through the firmware at each boot.
		"mkdir -p /etc/initramfs-tools/conf.d",
		"printf 'MODULES=list\\nCOMPRESS=%s\\n' " + d.compress() + " >/etc/initramfs-tools/conf.d/c2vm.conf",
		"printf '%s\\n' " + strings.Join(modulesFor(arch), " ") + " >>/etc/initramfs-tools/modules",
		"apt-get update",
		"extra=''",
		"for p in systemd-resolved systemd-repart; do if apt-cache show $p >/dev/null 2>&1; then extra=\"$extra $p\"; fi; done",
		// iproute2: `ip`, the first thing a VM's user runs to see the
		// network, is not in Debian's or Ubuntu's container images.
		// INITRD=No keeps the kernel's own hook from building an initramfs
		// that the initramfs-tools trigger then builds again: one is made
		// below, once.
		fmt.Sprintf("INITRD=No apt-get install -y --no-install-recommends %s systemd-sysv udev initramfs-tools e2fsprogs zstd iproute2 $extra%s", d.kernelPackage(arch), words(more)),
		"for k in /lib/modules/*; do v=${k##*/}; [ -e /boot/initrd.img-$v ] || update-initramfs -c -k \"$v\"; done",
		// A glob may match several kernels (the image had one): count, do
		// not test -e, which takes one operand.
		"ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo 'no kernel in /boot after installing it' >&2; exit 1; }",
		"ls /boot/initrd.img-* >/dev/null 2>&1 || { echo 'no initramfs in /boot after installing the kernel' >&2; exit 1; }",
		after,
	}, "\n")
}

// runLogs are the files installing packages writes the time it ran into:
// dpkg's, apt's and update-alternatives' logs, and ldconfig's cache of
// file times.
var runLogs = []string{"/var/log/dpkg.log", "/var/log/alternatives.log", "/var/log/apt/history.log",
	"/var/log/apt/term.log", "/var/log/apt/eipp.log.xz", "/var/cache/ldconfig/aux-cache"}

// keepRunLogs returns script lines that save runLogs as the image has them
// and put them back after the install (removing those it did not have),
// so that two builds at the same SOURCE_DATE_EPOCH give the same bytes.
func keepRunLogs() (before, after string) {
	files := strings.Join(runLogs, " ")
	saved := `"$saved/$(printf %s "$f" | tr / _)"`
	before = "saved=$(mktemp -d)\nfor f in " + files + `; do if [ -e "$f" ]; then cp -a "$f" ` + saved + "; fi; done"
	after = "for f in " + files + "; do if [ -e " + saved + " ]; then cp -a " + saved + ` "$f"; else rm -f "$f"; fi; done` + "\nrm -rf \"$saved\""
	return before, after
}

func (d debian) Install(st llb.State, o Options) llb.State {
	cache := func(p string) llb.RunOption {
		return llb.AddMount(p, llb.Scratch(), llb.AsPersistentCacheDir("c2vm-"+o.CacheNS+d.Name()+d.os.VersionID+p, llb.CacheMountLocked))
	}
	run := []llb.RunOption{
		llb.Args([]string{"/bin/sh", "-c", d.installScript(o.Arch, o.Access.packages(), o.Epoch)}),
		// As root in /, whatever USER and WORKDIR the Dockerfile ended with.
		llb.User("root"), llb.Dir("/"),
		cache("/var/cache/apt"),
		cache("/var/lib/apt/lists"),
	}
	if o.Epoch != "" {
		// mkinitramfs then writes the same archive each time.
		run = append(run, llb.AddEnv("SOURCE_DATE_EPOCH", o.Epoch))
	}
	for _, c := range o.constraints("install kernel (" + d.Name() + ")") {
		run = append(run, c)
	}
	return st.Run(run...).Root()
}

// words joins package names, each after a space.
func words(w []string) string {
	if len(w) == 0 {
		return ""
	}
	return " " + strings.Join(w, " ")
}
