//go:build boot

package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// stepScript replaces the fixture's marker: each boot runs the next step of
// a long-lived VM's life, then prints what the guest really runs and powers
// off. The Debian mirror comes from the guest's own sources.list.
const stepScript = `#!/bin/sh
state=/var/lib/c2vm-test
mkdir -p $state
n=$(cat $state/step 2>/dev/null || echo 0)
n=$((n + 1))
echo $n >$state/step
sync
fw=bios; [ -d /sys/firmware/efi ] && fw=uefi
log=$state/step$n.log
did=ok
# The fixture has no network set up: DHCP from QEMU's user network, and
# its DNS server.
systemctl start systemd-networkd
m=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
host=$(echo "$m" | cut -d/ -f3)
for i in $(seq 90); do getent hosts "$host" >/dev/null && break; sleep 1; done
case $n in
1)
	# A newer kernel from backports, as a user would install it, and a
	# kernel argument set where c2vm's docs say.
	uname -r >$state/first-kernel
	echo "deb $m bookworm-backports main" >/etc/apt/sources.list.d/backports.list
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -t bookworm-backports linux-image-amd64; } >$log 2>&1 || did=install-failed
	sed -i 's/^c2vm_cmdline=.*/c2vm_cmdline=c2vm.test=kept/' /etc/c2vm/boot.env || did=no-boot-env
	;;
2)
	# The kernel the disk was built with goes.
	DEBIAN_FRONTEND=noninteractive apt-get purge -y "linux-image-$(cat $state/first-kernel)" >$log 2>&1 || did=purge-failed
	;;
esac
[ "$did" = ok ] || tail -n 20 $log >/dev/ttyS0
disk=/dev/$(lsblk -no PKNAME "$(findmnt -no SOURCE /)" | head -n1)
arg=$(tr ' ' '\n' </proc/cmdline | grep '^c2vm.test=' | cut -d= -f2)
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
echo "C2VM-MARKER step=$n fw=$fw kernel=$(uname -r) first=$(cat $state/first-kernel) did=$did arg=${arg:-none} rootfs_bytes=$(findmnt -bno SIZE /) disk_bytes=$(lsblk -bdno SIZE "$disk") failed=${failed:-none}" >/dev/ttyS0
systemctl --no-block poweroff
`

// TestLongLivedVM lives a VM's life on one disk, alternating firmwares:
// a kernel installed in the guest boots next time (UEFI, then BIOS), the
// kernel the disk was built with can be purged, a kernel argument set in
// /etc/c2vm/boot.env reaches /proc/cmdline, and a disk enlarged a second
// time grows the root again. No unit fails at any boot. Its five boots
// take about 6 minutes under emulation, so it runs in make test-upgrade
// (C2VM_UPGRADE_TEST=1); make test keeps TestGrubNewestKernel and
// TestGrubMenu, which check the same kernel choice at boot.
func TestLongLivedVM(t *testing.T) {
	if os.Getenv("C2VM_UPGRADE_TEST") == "" {
		t.Skip("make test-upgrade runs it (C2VM_UPGRADE_TEST=1)")
	}
	_, tarball := fixture(t)
	top := guestNet(ocitest.NewTar()).File("usr/local/sbin/c2vm-marker", stepScript, 0o755).Bytes()
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, layoutOver(t, tarball, top))
	disk := filepath.Join(out, "linux.img")

	// Step 1 (BIOS): first growth to c2vm run's 8 GiB, install, set the argument.
	m := markerRun(t, disk, "bios", "--timeout", "20m")
	first := m["first"]
	if m["did"] != "ok" || m["kernel"] != first || m["failed"] != "none" {
		t.Fatalf("step 1: %v", m)
	}
	checkFills(t, "first boot", m, 8<<30)
	// Step 2 (UEFI): the new kernel and the argument; the old kernel purged.
	m = markerRun(t, disk, "uefi", "--timeout", "10m")
	if m["kernel"] == first || !strings.HasPrefix(m["kernel"], "6.") || m["arg"] != "kept" || m["did"] != "ok" || m["failed"] != "none" {
		t.Fatalf("step 2: want the backports kernel (not %s) with c2vm.test=kept: %v", first, m)
	}
	newer := m["kernel"]
	// Step 3 (BIOS): boots without the kernel the disk was built with.
	m = markerRun(t, disk, "bios")
	if m["kernel"] != newer || m["arg"] != "kept" || m["failed"] != "none" {
		t.Fatalf("step 3: want kernel %s, c2vm.test=kept: %v", newer, m)
	}
	// Step 4 (UEFI): the disk enlarged again; the root follows at boot.
	if b, err := exec.Command("qemu-img", "resize", "-q", "-f", "raw", disk, "12G").CombinedOutput(); err != nil {
		t.Fatalf("resize: %v %s", err, b)
	}
	m = markerRun(t, disk, "uefi", "--disk-size", "keep")
	if m["kernel"] != newer || m["failed"] != "none" {
		t.Fatalf("step 4: %v", m)
	}
	checkFills(t, "after the second enlargement", m, 12<<30)
	if fs, _ := strconv.ParseInt(m["rootfs_bytes"], 10, 64); fs < 11<<30 {
		t.Errorf("step 4: the root is %d bytes on a 12 GiB disk", fs)
	}
	fsck(t, disk)
}

// upgradeScript upgrades Debian 12 to 13 on the first boot, as Debian's
// release notes say (sources to trixie, upgrade without new packages,
// then full-upgrade), and reports on the second.
const upgradeScript = `#!/bin/sh
state=/var/lib/c2vm-test
mkdir -p $state
n=$(cat $state/step 2>/dev/null || echo 0)
n=$((n + 1))
echo $n >$state/step
sync
did=ok
if [ $n = 1 ]; then
	systemctl start systemd-networkd
	host=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list | cut -d/ -f3)
	for i in $(seq 90); do getent hosts "$host" >/dev/null && break; sleep 1; done
	sed -i 's/bookworm/trixie/g' /etc/apt/sources.list
	export DEBIAN_FRONTEND=noninteractive
	o='-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef'
	{ apt-get update && apt-get -y $o upgrade --without-new-pkgs && apt-get -y $o full-upgrade; } >$state/upgrade.log 2>&1 || did=upgrade-failed
	[ $did = ok ] || tail -n 30 $state/upgrade.log >/dev/ttyS0
fi
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
echo "C2VM-MARKER step=$n kernel=$(uname -r) debian=$(cut -d. -f1 /etc/debian_version) did=$did failed=${failed:-none}" >/dev/ttyS0
systemctl --no-block poweroff
`

// TestReleaseUpgrade upgrades a Debian 12 guest to Debian 13 with apt and
// reboots it: Debian 13's kernel runs and no unit fails. It downloads the
// whole release and takes about 11 minutes under emulation, so it runs only
// in make test-upgrade (C2VM_UPGRADE_TEST=1).
func TestReleaseUpgrade(t *testing.T) {
	if os.Getenv("C2VM_UPGRADE_TEST") == "" {
		t.Skip("make test-upgrade runs it (C2VM_UPGRADE_TEST=1)")
	}
	_, tarball := fixture(t)
	top := guestNet(ocitest.NewTar()).File("usr/local/sbin/c2vm-marker", upgradeScript, 0o755).Bytes()
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, layoutOver(t, tarball, top))
	disk := filepath.Join(out, "linux.img")
	m := markerRun(t, disk, "uefi", "--timeout", "150m", "--memory", "2G")
	if m["did"] != "ok" {
		t.Fatalf("upgrade boot: %v", m)
	}
	old := m["kernel"]
	m = markerRun(t, disk, "bios", "--timeout", "15m")
	if m["debian"] != "13" || m["kernel"] == old || !strings.Contains(m["kernel"], "+deb13") || m["failed"] != "none" {
		t.Fatalf("after the upgrade: want Debian 13's kernel (not %s) and no failed unit: %v", old, m)
	}
	m = markerRun(t, disk, "uefi", "--timeout", "15m")
	if m["debian"] != "13" || m["failed"] != "none" {
		t.Errorf("after the upgrade, under UEFI: %v", m)
	}
	fsck(t, disk)
}

// guestNet adds what the fixture lacks to reach the archive: DHCP on QEMU's
// user network through systemd-networkd, and its DNS server.
func guestNet(t *ocitest.Tar) *ocitest.Tar {
	// An initramfs of the modules this machine needs (as c2vm's own
	// system disks have a slim one) makes a kernel install minutes
	// shorter under emulation.
	t.Dir("etc/initramfs-tools", 0o755).Dir("etc/initramfs-tools/conf.d", 0o755).
		File("etc/initramfs-tools/conf.d/c2vm-test.conf", "MODULES=dep\n", 0o644)
	return t.File("etc/systemd/network/80-c2vm-test.network", "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n", 0o644).
		File("etc/resolv.conf", "nameserver 10.0.2.3\n", 0o644)
}
