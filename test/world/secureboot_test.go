//go:build world

package world

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
)

// sbMarker prints the guest's Secure Boot state as the firmware reports
// it (the last byte of the SecureBoot EFI variable: 1 is on), whether the
// serial console's getty runs, and the failed units; then it powers off.
// It waits for the getty itself: Type=idle holds the getty back for at
// most 5 s, which a guest sharing the host's cores can outlast.
const sbMarker = `#!/bin/sh
v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
sb=none; [ -r $v ] && sb=$(od -An -tu1 $v | awk '{print $NF}')
for i in $(seq 30); do systemctl -q is-active serial-getty@ttyS0.service && break; sleep 1; done
sleep 2
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd, -)
echo "C2VM-SB secureboot=$sb kernel=$(uname -r) failed=${failed:-none} getty=$(systemctl is-active serial-getty@ttyS0.service)" >/dev/ttyS0
sleep 5
systemctl --no-block poweroff
`

var sbUnit = oneshotUnit("c2vm Secure Boot marker", "/usr/local/sbin/c2vm-sb", "multi-user.target", "")

// sbContext is a Dockerfile FROM base with the marker, and more lines.
func sbContext(t *testing.T, base, more string) string {
	return writeContext(t, map[string]string{
		"c2vm-sb": sbMarker, "c2vm-sb.service": sbUnit,
		"Dockerfile": "FROM " + base + "\nCOPY c2vm-sb /usr/local/sbin/c2vm-sb\nCOPY c2vm-sb.service /etc/systemd/system/c2vm-sb.service\n" +
			"RUN chmod 0755 /usr/local/sbin/c2vm-sb && mkdir -p /etc/systemd/system/multi-user.target.wants && ln -sf /etc/systemd/system/c2vm-sb.service /etc/systemd/system/multi-user.target.wants/\n" + more,
	})
}

// bootSB boots a disk until its marker has printed and the guest powered
// off, and returns the console.
func bootSB(t *testing.T, disk string, flags ...string) string {
	t.Helper()
	args := append([]string{"run", "--snapshot", "--expect", "C2VM-SB", "--timeout", "600s"}, flags...)
	out, err := exec.Command(c2vm, append(args, disk)...).CombinedOutput()
	if err != nil {
		t.Fatalf("boot %v: %v\n%s", flags, err, tail(string(out), 4000))
	}
	return string(out)
}

var sbLine = regexp.MustCompile(`C2VM-SB secureboot=(\S+) kernel=(\S+) failed=(\S+) getty=(\S+)`)

// checkSB asserts a system guest booted to its login prompt with the
// Secure Boot state want and no failed unit.
func checkSB(t *testing.T, what, console, want string) {
	t.Helper()
	m := sbLine.FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("%s: no marker\n%s", what, tail(console, 3000))
	}
	t.Logf("%s: %s", what, m[0])
	if m[1] != want || m[3] != "none" {
		t.Errorf("%s: secureboot=%s failed=%s, want secureboot=%s and no failed unit", what, m[1], m[3], want)
	}
	if m[4] != "active" || !strings.Contains(console, "login:") {
		t.Errorf("%s: the serial getty is %s and printed no login prompt", what, m[4])
	}
}

func readMeta(t *testing.T, out string) *diskmeta.Meta {
	t.Helper()
	m, err := diskmeta.ForDisk(filepath.Join(out, "linux.img"))
	if err != nil || m == nil {
		t.Fatalf("c2vm.json: %v", err)
	}
	return m
}

// Debian 12 and Ubuntu 24.04 built with default options boot with Secure
// Boot enforcing (OVMF's secboot build, Microsoft's keys) through their
// distribution's shim, GRUB and kernel, and report it on. make
// test-secure-boot (C2VM_SECURE_BOOT_FULL) adds the other supported
// releases and both disks' BIOS and plain-UEFI boots, where the guest
// reports Secure Boot off.
func TestSecureBootSystem(t *testing.T) {
	parallelBoot(t)
	full := os.Getenv("C2VM_SECURE_BOOT_FULL") != ""
	type sbCase struct {
		base     string
		fallback bool   // BIOS and plain UEFI too
		more     string // Dockerfile lines
	}
	// Every default disk is Secure Boot capable, so make test's other boots
	// are already BIOS and plain UEFI boots of one; the full run adds the
	// guest's own view of them.
	cases := []sbCase{{"debian:bookworm", full, ""}, {"ubuntu:24.04", full, ""}}
	if full && os.Getenv("C2VM_DISTROS") != "all" {
		t.Fatal("C2VM_SECURE_BOOT_FULL=1 boots Debian 11 and Ubuntu 20.04 and 22.04, whose base images the test world has only with C2VM_DISTROS=all; run make test-secure-boot")
	}
	if full {
		cases = append(cases, sbCase{"debian:bullseye", false, ""}, sbCase{"debian:trixie", false, ""},
			sbCase{"ubuntu:20.04", false, ubuntuUpdates}, sbCase{"ubuntu:22.04", false, ubuntuUpdates})
	}
	for _, c := range cases {
		t.Run(c.base, func(t *testing.T) {
			out := buildDisk(t, sbContext(t, c.base, c.more))
			if !readMeta(t, out).SecureBoot {
				t.Fatalf("c2vm.json does not say the disk boots with Secure Boot on")
			}
			disk := filepath.Join(out, "linux.img")
			console := bootSB(t, disk, "--secure-boot")
			checkSB(t, "secure boot", console, "1")
			if !strings.Contains(console, "c2vm: firmware: UEFI Secure Boot") {
				t.Errorf("c2vm run did not say which firmware it used")
			}
			if c.fallback {
				checkSB(t, "bios", bootSB(t, disk, "--firmware", "bios"), "none")
				checkSB(t, "uefi", bootSB(t, disk, "--firmware", "uefi"), "0")
			}
		})
	}
}

// ubuntuUpdates installs the release's current kernel from its -updates
// pocket. The test world's Ubuntu images have only the release pocket,
// whose 20.04 and 22.04 kernels are signed with keys Ubuntu's shim now
// revokes (a disk with one boots through c2vm's GRUB, with a note).
const ubuntuUpdates = "RUN uri=$(awk '$1==\"deb\" {print $2; exit}' /etc/apt/sources.list) && . /etc/os-release && echo \"deb $uri $VERSION_CODENAME-updates main\" >/etc/apt/sources.list.d/c2vm-updates.list && apt-get update && apt-get install -y --no-install-recommends linux-image-virtual && rm -rf /var/lib/apt/lists/*\n"

// A FROM scratch program built with default options runs in app mode with
// Secure Boot enforcing, through shim, Debian's GRUB and c2vm's kernel
// (Debian's, signed), and c2vm run returns its exit code.
func TestSecureBootApp(t *testing.T) {
	parallelBoot(t)
	dir := writeContext(t, map[string]string{"report.go": reportGo, "Dockerfile": reportImage + `ENTRYPOINT ["/report", "sb"]
`})
	out := buildDisk(t, dir)
	if !readMeta(t, out).SecureBoot {
		t.Fatalf("c2vm.json does not say the app disk boots with Secure Boot on")
	}
	code, console := runApp(t, filepath.Join(out, "linux.img"), "--snapshot", "--secure-boot")
	if code != 3 || !strings.Contains(console, "C2VM-REPORT") {
		t.Fatalf("exit %d, want the program's 3\n%s", code, tail(console, 3000))
	}
	if !strings.Contains(console, "c2vm: firmware: UEFI Secure Boot") {
		t.Errorf("c2vm run did not say which firmware it used")
	}
}

// unsignedKernel strips the signature from the kernel the frontend
// installed, as a kernel built by the user would have none.
const unsignedKernel = "RUN apt-get update && apt-get install -y --no-install-recommends sbsigntool && for k in /boot/vmlinuz-*; do sbattach --remove \"$k\"; done && apt-get purge -y sbsigntool && rm -rf /var/lib/apt/lists/*\n"

// A kernel without a signature: auto says so, names the file and builds a
// disk that boots without Secure Boot; the firmware refuses that disk
// with Secure Boot on; require fails the build naming the file.
func TestSecureBootUnsignedKernel(t *testing.T) {
	parallelBoot(t)
	dir := sbContext(t, "debian:bookworm", unsignedKernel)
	out := t.TempDir()
	log := buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "-o", out, dir)
	note := regexp.MustCompile(`Secure Boot: the kernel \(/boot/vmlinuz-[^)]+\) cannot boot with Secure Boot on: not signed`)
	if !note.MatchString(log) || !strings.Contains(log, "turn Secure Boot off") {
		t.Errorf("the build did not say which piece is unsigned:\n%s", tail(log, 3000))
	}
	if readMeta(t, out).SecureBoot {
		t.Errorf("c2vm.json says Secure Boot for a disk with an unsigned kernel")
	}
	disk := filepath.Join(out, "linux.img")
	checkSB(t, "uefi", bootSB(t, disk, "--firmware", "uefi"), "0")
	refused, err := exec.Command(c2vm, "run", "--snapshot", "--secure-boot", "--expect", "Access Denied", "--quit-on-expect", "--timeout", "400s", disk).CombinedOutput()
	if err != nil || strings.Contains(string(refused), "C2VM-SB") {
		t.Errorf("with Secure Boot on, the firmware did not refuse the disk (%v)\n%s", err, tail(string(refused), 3000))
	}
	fails := buildxFails(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_SECURE_BOOT=require", "-o", t.TempDir(), dir)
	want := regexp.MustCompile(`Secure Boot is required \(C2VM_SECURE_BOOT=require\), but the kernel \(/boot/vmlinuz-[^)]+\) cannot boot with Secure Boot on: not signed`)
	if !want.MatchString(fails) || !strings.Contains(fails, "fix:") {
		t.Errorf("require did not fail naming the kernel:\n%s", tail(fails, 3000))
	}
}
