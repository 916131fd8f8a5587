package vmrun

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// memorySyntax is the part of QEMU's size syntax c2vm passes on: a number,
// perhaps with a fraction, and an optional binary unit. Anything else (a
// comma above all) would be read by QEMU as more options.
var memorySyntax = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([KMGTkmgt]?)$`)

const (
	minMemory = 32 << 20 // below this not even an initramfs unpacks
	maxMemory = 1 << 40  // beyond QEMU's and any host's reach here
	maxCPUs   = 255      // q35 without an x2APIC-capable IOMMU
)

// ParseMemory checks a --memory value and returns it in bytes. A bare
// number is MiB, as QEMU reads it.
func ParseMemory(s string) (int64, error) {
	m := memorySyntax.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, usererr.New(fmt.Sprintf("bad memory size %q", s), "give a number with an optional K, M, G or T (powers of 1024; a bare number is MiB), such as 2G or 1536M")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, usererr.New(fmt.Sprintf("bad memory size %q", s), "give a number such as 2G")
	}
	unit := map[string]float64{"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[strings.ToUpper(m[2])]
	b := v * unit
	if b < minMemory || b > maxMemory {
		return 0, usererr.New(fmt.Sprintf("memory size %s is out of range", s), "give between 32M and 1T, such as 2G")
	}
	return int64(b), nil
}

// ParseCPUs checks a --cpus value given as text.
func ParseCPUs(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || !allDigits(strings.TrimSpace(s)) {
		return 0, usererr.New(fmt.Sprintf("bad CPU count %q", s), fmt.Sprintf("give a whole number from 1 to %d, such as 2", maxCPUs))
	}
	return n, checkCPUs(n)
}

func checkCPUs(n int) error {
	if n < 1 || n > maxCPUs {
		return usererr.New(fmt.Sprintf("CPU count %d is out of range", n), fmt.Sprintf("give a whole number from 1 to %d, such as 2", maxCPUs))
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkOptions validates the options that need no file or tool.
func checkOptions(o Options) error {
	if o.Snapshot && o.InPlace {
		return usererr.New("--snapshot and --in-place contradict each other: one discards the guest's writes, the other writes them into the disk",
			"keep one of them (or neither: the guest's writes then go to the VM's overlay)")
	}
	if o.Name != "" {
		if err := CheckName(o.Name); err != nil {
			return err
		}
	}
	if o.QuitOnExpect && o.Expect == "" {
		return usererr.New("--quit-on-expect needs --expect TEXT: it stops the guest when TEXT appears",
			"add --expect TEXT (e.g. --expect 'login:'), or drop --quit-on-expect")
	}
	// An arm64 disk's limits come first: they rule out what the other
	// checks' fixes suggest (--machine pc, --firmware uefi with Secure
	// Boot). Secure Boot's check comes next: checkHardware's fix for
	// --disk-bus ide is --machine pc, which Secure Boot rules out.
	if err := checkArchValue(o); err != nil {
		return err
	}
	if err := checkArch(o, explicitArch(o), nil); err != nil {
		return err
	}
	if err := checkSecureBoot(o); err != nil {
		return err
	}
	if _, err := checkHardware(o, explicitArch(o)); err != nil {
		return err
	}
	if _, err := parseDiskSize(o.DiskSize); err != nil {
		return err
	}
	if _, err := ParseMemory(o.Memory); err != nil {
		return err
	}
	if err := checkCPUs(o.CPUs); err != nil {
		return err
	}
	if o.Timeout < 0 {
		return usererr.New(fmt.Sprintf("--timeout %s is negative", o.Timeout), "give a duration such as 90s or 5m, or 0 for none")
	}
	if o.ReadyTimeout < 0 {
		return usererr.New(fmt.Sprintf("--ready-timeout %s is negative", o.ReadyTimeout), "give a duration such as 90s or 5m")
	}
	for _, port := range o.WaitPorts {
		if port < 1 || port > 65535 {
			return usererr.New(fmt.Sprintf("--wait-port %d is not a port from 1 to 65535", port), "give the guest's TCP port, such as --wait-port 80")
		}
	}
	switch o.Accel {
	case "", "auto", "kvm", "tcg":
	default:
		return usererr.New(fmt.Sprintf("unknown accelerator %q", o.Accel), "use --accel auto, kvm or tcg")
	}
	switch o.Firmware {
	case "", "auto", "bios", "uefi":
	default:
		return usererr.New(fmt.Sprintf("unknown firmware %q", o.Firmware), "use --firmware auto, bios or uefi")
	}
	if err := checkBoot(o); err != nil {
		return err
	}
	for _, s := range o.Ports {
		if _, err := ParsePort(s); err != nil {
			return err
		}
	}
	if o.QMP != "" {
		if err := checkSocketPath(o.QMP); err != nil {
			return err
		}
	}
	switch o.Display {
	case "", "none", "vnc", "gtk":
	default:
		return usererr.New(fmt.Sprintf("unknown display %q", o.Display), "use --display none, vnc or gtk")
	}
	if o.CloudInit != "" {
		return checkCloudInit(o.CloudInit)
	}
	return nil
}

// checkSocketPath refuses what a Unix socket cannot be bound at: sun_path
// holds 107 bytes and a NUL.
func checkSocketPath(p string) error {
	if len(p) > 107 {
		return usererr.New(fmt.Sprintf("QMP socket path %s is %d bytes; a Unix socket path may have at most 107", p, len(p)),
			"use a shorter --qmp path (or a shorter TMPDIR)")
	}
	if strings.ContainsRune(p, 0) {
		return usererr.New("QMP socket path has a NUL byte", "use a plain file path for --qmp")
	}
	// QEMU removes whatever is at the path before it binds there.
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return usererr.New(fmt.Sprintf("%s exists and is not a socket: QEMU would delete it to put its QMP socket there", p),
			"give --qmp a path where nothing but an old socket is")
	}
	return nil
}
