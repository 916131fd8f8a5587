package vmrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
)

// fakeAAVMF points aavmfDir at a directory holding stand-ins for AAVMF's
// two files.
func fakeAAVMF(t *testing.T) string {
	t.Helper()
	old := aavmfDir
	t.Cleanup(func() { aavmfDir = old })
	aavmfDir = t.TempDir()
	os.WriteFile(filepath.Join(aavmfDir, "AAVMF_CODE.fd"), []byte("code"), 0o644)
	os.WriteFile(filepath.Join(aavmfDir, "AAVMF_VARS.fd"), []byte("vars"), 0o644)
	return aavmfDir
}

// x86Only are options no arm64 command line may hold: the x86 machines,
// SMM, SeaBIOS or qboot, ISA devices, IDE, AHCI, PVSCSI, OVMF and its
// Secure Boot flash, the x86 direct boot.
var x86Only = []string{"q35", "smm", "-bios", "isa-", "if=ide", "ahci", "OVMF", "cfi.pflash01", "i440", "pvscsi", "-kernel", "-initrd"}

func checkNoX86(t *testing.T, args []string) {
	t.Helper()
	for i, a := range args {
		for _, bad := range x86Only {
			if strings.Contains(a, bad) {
				t.Errorf("x86-only %q in %q", a, args)
			}
		}
		if a == "-machine" && (i+1 == len(args) || !strings.HasPrefix(args[i+1], "virt")) {
			t.Errorf("not the virt machine: %q", args)
		}
	}
}

func TestQEMUArgsARM64(t *testing.T) {
	dir := fakeAAVMF(t)
	p := testPlan(t, Options{Disk: "/d/linux.img"})
	p.arch = archARM64
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(p.work, "AAVMF_VARS.fd")
	for _, pair := range [][2]string{
		{"-machine", "virt"}, {"-cpu", "max"}, {"-accel", "tcg"}, {"-m", "1024M"}, {"-smp", "2"},
		// QEMU's first serial port is virt's PL011: the guest's ttyAMA0.
		{"-serial", "mon:stdio"},
		{"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + filepath.Join(dir, "AAVMF_CODE.fd")},
		{"-drive", "if=pflash,format=raw,unit=1,file=" + vars},
		{"-drive", "file=/d/linux.img,format=raw,if=virtio"},
		{"-netdev", "user,id=net0"}, {"-device", "virtio-net-pci,netdev=net0"},
		{"-device", "virtio-rng-pci"},
	} {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("%s %s missing from %q", pair[0], pair[1], args)
		}
	}
	checkNoX86(t, args)
	if b, _ := os.ReadFile(vars); string(b) != "vars" {
		t.Errorf("variable store copy holds %q", b)
	}
	if slices.Contains(args, "virtio-gpu-pci") {
		t.Errorf("a graphics card without a display: %q", args)
	}

	// KVM on an arm64 host: the host's CPU and interrupt controller.
	args, err = p.qemuArgs("kvm", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	if !hasPair(args, "-machine", "virt,gic-version=host") || !hasPair(args, "-cpu", "host") || hasPair(args, "-cpu", "max") {
		t.Errorf("KVM: %q", args)
	}
	// KVM's CPU is the host's, whatever QEMU's pointer authentication.
	p.pauthImpdef = true
	if args, _ = p.qemuArgs("kvm", "uefi"); !hasPair(args, "-cpu", "host") {
		t.Errorf("KVM with pauthImpdef: %q", args)
	}
	if args, _ = p.qemuArgs("tcg", "uefi"); !hasPair(args, "-cpu", "max,pauth-impdef=on") {
		t.Errorf("TCG with pauthImpdef: %q", args)
	}
}

// A screen on virt needs a graphics card and a USB keyboard.
func TestQEMUArgsARM64Display(t *testing.T) {
	fakeAAVMF(t)
	p := testPlan(t, Options{Disk: "/d/linux.img", Display: "gtk", DiskBus: "nvme", NIC: "e1000"})
	p.arch = archARM64
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{"-display gtk", "-device virtio-gpu-pci -device qemu-xhci,id=usb0 -device usb-kbd,bus=usb0.0",
		"-drive file=/d/linux.img,format=raw,if=none,id=disk0 -device nvme,drive=disk0,serial=c2vm0", "-device e1000,netdev=net0"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q missing from %s", want, got)
		}
	}
	checkNoX86(t, args)
}

func TestQEMUArgsARM64MissingFirmware(t *testing.T) {
	old := aavmfDir
	defer func() { aavmfDir = old }()
	aavmfDir = t.TempDir()
	p := testPlan(t, Options{Disk: "/d/linux.img"})
	p.arch = archARM64
	_, err := p.qemuArgs("tcg", "uefi")
	var m *hosttools.MissingToolError
	if !errors.As(err, &m) || m.Package != "qemu-efi-aarch64" || !strings.Contains(err.Error(), "apt-get install qemu-efi-aarch64") {
		t.Errorf("missing AAVMF: %v", err)
	}
}

func TestARMHardware(t *testing.T) {
	for _, o := range []Options{{}, {Machine: "virt"}, {DiskBus: "virtio-scsi"}, {DiskBus: "nvme"}, {NIC: "e1000,rtl8139,vmxnet3,e1000e"}} {
		h, err := checkHardware(o, archARM64)
		if err != nil || h.machine != "virt" {
			t.Errorf("%+v: %q %v", o, h.machine, err)
		}
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Machine: "q35"}, "virt machine, not --machine q35"},
		{Options{Machine: "pc"}, "virt machine, not --machine pc"},
		{Options{DiskBus: "sata"}, "--disk-bus sata"},
		{Options{DiskBus: "ide"}, "--disk-bus ide"},
		{Options{DiskBus: "pvscsi"}, "--disk-bus pvscsi"},
		{Options{NIC: "ne2k"}, `unknown NIC model "ne2k"`},
	} {
		_, err := checkHardware(c.o, archARM64)
		mustUserErr(t, err, c.want)
	}
	// Before the disk is read, virt stands for arm64 and its rules.
	if _, err := checkHardware(Options{Machine: "virt", DiskBus: "sata"}, ""); err == nil || !strings.Contains(err.Error(), "--disk-bus sata") {
		t.Errorf("virt and sata, arch unknown: %v", err)
	}
	if _, err := checkHardware(Options{Machine: "virt"}, archAMD64); err == nil || !strings.Contains(err.Error(), "--arch arm64") {
		t.Errorf("virt for an amd64 disk: %v", err)
	}
}

func TestCheckArch(t *testing.T) {
	for _, c := range []struct {
		o    Options
		meta *diskmeta.Meta
		want string
	}{
		{Options{SecureBoot: true}, nil, "no signed boot chain"},
		{Options{Firmware: "bios"}, nil, "arm64 machines have no BIOS"},
		{Options{}, &diskmeta.Meta{Firmware: "bios", Arch: "arm64"}, "says it boots with BIOS only"},
		{Options{Boot: bootKernel}, nil, "--boot kernel starts x86 kernels"},
	} {
		mustUserErr(t, checkArch(c.o, archARM64, c.meta), c.want)
		// The same options are an amd64 disk's to take.
		if err := checkArch(c.o, archAMD64, c.meta); err != nil {
			t.Errorf("amd64 %+v: %v", c.o, err)
		}
	}
	for _, fw := range []string{"uefi", "hybrid", ""} {
		if err := checkArch(Options{}, archARM64, &diskmeta.Meta{Firmware: fw, Arch: "arm64"}); err != nil {
			t.Errorf("firmware %q: %v", fw, err)
		}
	}
	// --arch arm64 refuses Secure Boot before the disk is read, with the
	// arm64 reason rather than Secure Boot's own checks.
	err := checkOptions(withDefaults(Options{Arch: "arm64", SecureBoot: true, Machine: "virt"}))
	if err == nil || !strings.Contains(err.Error(), "no signed boot chain") || !strings.Contains(err.Error(), "fix: drop --secure-boot") {
		t.Errorf("--arch arm64 --secure-boot: %v", err)
	}
	if err := checkOptions(withDefaults(Options{Arch: "riscv64"})); err == nil || !strings.Contains(err.Error(), `unknown architecture "riscv64"`) {
		t.Errorf("--arch riscv64: %v", err)
	}
}

func TestPickArchAccel(t *testing.T) {
	oldHost, oldKVM := hostArch, kvmDevice
	defer func() { hostArch, kvmDevice = oldHost, oldKVM }()
	t.Setenv("C2VM_ACCEL", "")
	hostArch = "amd64"
	for a, want := range map[string]string{"": "tcg", "auto": "tcg", "tcg": "tcg"} {
		if got, err := pickArchAccel(a, "/nonexistent/qemu", archARM64); err != nil || got != want {
			t.Errorf("amd64 host, %q: %q %v", a, got, err)
		}
	}
	if _, err := pickArchAccel("kvm", "/nonexistent/qemu", archARM64); err == nil || !strings.Contains(err.Error(), "this arm64 disk is on an amd64 host") || !strings.Contains(err.Error(), "--accel tcg") {
		t.Errorf("KVM for arm64 on amd64: %v", err)
	}
	t.Setenv("C2VM_ACCEL", "kvm")
	if _, err := pickArchAccel("auto", "/nonexistent/qemu", archARM64); err == nil || !strings.Contains(err.Error(), "C2VM_ACCEL") {
		t.Errorf("C2VM_ACCEL=kvm for arm64 on amd64: %v", err)
	}
	t.Setenv("C2VM_ACCEL", "")

	// An arm64 host: KVM exactly when its device opens.
	hostArch = "arm64"
	kvmDevice = filepath.Join(t.TempDir(), "kvm")
	if got, err := pickArchAccel("auto", "/nonexistent/qemu", archARM64); err != nil || got != "tcg" {
		t.Errorf("arm64 host without KVM: %q %v", got, err)
	}
	os.WriteFile(kvmDevice, nil, 0o600)
	if got, err := pickArchAccel("auto", "/nonexistent/qemu", archARM64); err != nil || got != "kvm" {
		t.Errorf("arm64 host with KVM: %q %v", got, err)
	}
	if got, err := pickArchAccel("tcg", "/nonexistent/qemu", archARM64); err != nil || got != "tcg" {
		t.Errorf("arm64 host, --accel tcg: %q %v", got, err)
	}
	// An amd64 disk there is emulated.
	if got, err := pickArchAccel("auto", "/nonexistent/qemu", archAMD64); err != nil || got != "tcg" {
		t.Errorf("amd64 disk on an arm64 host: %q %v", got, err)
	}
}

func TestEmulationNote(t *testing.T) {
	old := hostArch
	defer func() { hostArch = old }()
	hostArch = "amd64"
	if got := emulationNote(archARM64, "tcg"); got != "c2vm: note: this arm64 disk runs under emulation (TCG) on this amd64 host: it is slow, a minute or more to boot" {
		t.Errorf("arm64 on amd64: %q", got)
	}
	if got := emulationNote(archAMD64, "tcg"); got != "" {
		t.Errorf("amd64 under TCG: %q", got)
	}
	hostArch = "arm64"
	if got := emulationNote(archARM64, "tcg"); !strings.Contains(got, "no usable KVM") || !strings.Contains(got, "slow") {
		t.Errorf("arm64 without KVM: %q", got)
	}
	if got := emulationNote(archAMD64, "tcg"); got != "c2vm: note: this amd64 disk runs under emulation (TCG) on this arm64 host: it is slow, a minute or more to boot" {
		t.Errorf("amd64 on arm64: %q", got)
	}
	if got := emulationNote(archARM64, "kvm"); got != "" {
		t.Errorf("arm64 under KVM: %q", got)
	}
}

const arm64Meta = `{"mode": "system", "firmware": "uefi", "arch": "arm64"}`

// fakeARMRun is fakeRun for an arm64 disk: the stand-in is also
// qemu-system-aarch64, AAVMF is a stand-in, and the host is amd64.
func fakeARMRun(t *testing.T, mode, console, meta string) Options {
	o := fakeRun(t, mode, console, meta)
	self, _ := filepath.Abs(os.Args[0])
	oldBin, oldHost := qemuARM64Binary, hostArch
	t.Cleanup(func() { qemuARM64Binary, hostArch = oldBin, oldHost })
	qemuARM64Binary, hostArch = self, "amd64"
	fakeAAVMF(t)
	o.Firmware, o.Accel = "", ""
	return o
}

// A run of an arm64 disk, through the stand-in: the arm64 QEMU with the
// machine, CPU and firmware of arm64, and the note that it is emulated.
func TestRunARM64(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	t.Setenv("C2VM_ACCEL", "")
	o := fakeARMRun(t, "console", "EFI stub: Booting Linux Kernel...\r\ndebian login: ", arm64Meta)
	var stderr strings.Builder
	o.Stderr, o.Snapshot = &stderr, true
	o.Expect = "login:"
	args := runArgs(t, o, argsFile)
	if !hasPair(args, "-machine", "virt") || !hasPair(args, "-cpu", "max") || !slices.ContainsFunc(args, func(a string) bool { return strings.HasSuffix(a, "/AAVMF_CODE.fd") }) {
		t.Errorf("not an arm64 command line: %q", args)
	}
	checkNoX86(t, args)
	if !strings.Contains(stderr.String(), "c2vm: note: this arm64 disk runs under emulation (TCG) on this amd64 host: it is slow, a minute or more to boot\n") {
		t.Errorf("no emulation note:\n%s", stderr.String())
	}
}

// QEMU 6.0 and later get the quicker pointer authentication; an older or
// unknown one plain max, and TCG's threads as for amd64.
func TestRunARM64CPU(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	t.Setenv("C2VM_ACCEL", "")
	for version, want := range map[string][2]string{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)": {"max,pauth-impdef=on", "tcg,thread=single"},
		"QEMU emulator version 9.2.2":                                    {"max,pauth-impdef=on", "tcg"},
		"QEMU emulator version 5.2.0":                                    {"max", "tcg,thread=single"},
		"garbage":                                                        {"max", "tcg,thread=single"},
	} {
		t.Setenv("FAKE_VERSION", version)
		o := fakeARMRun(t, "console", "login: ", arm64Meta)
		o.Snapshot, o.Expect = true, "login:"
		args := runArgs(t, o, argsFile)
		if !hasPair(args, "-cpu", want[0]) || !hasPair(args, "-accel", want[1]) {
			t.Errorf("%s: %q", version, args)
		}
	}
}

// An arm64 app disk reports its program's exit code as an amd64 one does,
// and boots through its firmware, not the x86 direct boot.
func TestRunARM64App(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	t.Setenv("C2VM_ACCEL", "")
	o := fakeARMRun(t, "console", "hello\r\nc2vm: exit code=7\r\nreboot: Power down\r\n", `{"mode": "app", "firmware": "uefi", "arch": "arm64"}`)
	var stderr strings.Builder
	o.Stderr, o.Snapshot = &stderr, true
	err := Run(context.Background(), o)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("exit: %v", err)
	}
	if strings.Contains(stderr.String(), "directly") || strings.Contains(stderr.String(), "bzImage") {
		t.Errorf("tried the direct boot:\n%s", stderr.String())
	}
}

// The disk's arch comes from --arch, else c2vm.json, which a hostile
// value cannot pass.
func TestRunARM64Arch(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	t.Setenv("C2VM_ACCEL", "")
	// --arch amd64 overrides the file: x86's machine and SeaBIOS.
	o := fakeARMRun(t, "console", "login: ", arm64Meta)
	o.Arch, o.Firmware, o.Snapshot, o.Expect = "amd64", "bios", true, "login:"
	if args := runArgs(t, o, argsFile); !hasPair(args, "-machine", "q35") {
		t.Errorf("--arch amd64: %q", args)
	}
	// --arch arm64 on a disk without c2vm.json.
	o = fakeARMRun(t, "console", "login: ", "")
	o.Arch, o.Snapshot, o.Expect = "arm64", true, "login:"
	if args := runArgs(t, o, argsFile); !hasPair(args, "-machine", "virt") {
		t.Errorf("--arch arm64: %q", args)
	}
	o = fakeARMRun(t, "console", "login: ", `{"mode": "system", "firmware": "uefi", "arch": "riscv64"}`)
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), `arch "riscv64" is neither amd64 nor arm64`) {
		t.Errorf("hostile arch: %v", err)
	}
	o = fakeARMRun(t, "console", "login: ", arm64Meta)
	o.SecureBoot = true
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no signed boot chain") {
		t.Errorf("--secure-boot on arm64: %v", err)
	}
	o = fakeARMRun(t, "console", "login: ", `{"mode": "system", "firmware": "bios", "arch": "arm64"}`)
	if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "C2VM_FIRMWARE=uefi") {
		t.Errorf("bios arm64 disk: %v", err)
	}
}

// TestARM64ArgsAcceptedByQEMU starts the real qemu-system-aarch64, paused,
// with the command line Run builds for an arm64 disk, and asks it over
// QMP what it set up: the disk on virtio-blk-pci, AAVMF's two flash
// drives, the forwards, and the PL011 as its serial port.
func TestARM64ArgsAcceptedByQEMU(t *testing.T) {
	needTool(t, "qemu-system-aarch64")
	if _, err := os.Stat(filepath.Join(aavmfDir, "AAVMF_CODE.fd")); err != nil && os.Getenv("C2VM_REQUIRE_TOOLS") == "" {
		t.Skip("no AAVMF")
	}
	disk := filepath.Join(t.TempDir(), "linux.img")
	mbr := make([]byte, 64<<20)
	mbr[510], mbr[511] = 0x55, 0xAA
	os.WriteFile(disk, mbr, 0o644)
	port := freePort(t)
	userQMP := filepath.Join(t.TempDir(), "user.sock")
	p, err := prepare(context.Background(), Options{Disk: disk, Arch: "arm64", Accel: "tcg", Snapshot: true,
		Ports: []string{"127.0.0.1:" + port + ":22"}, QMP: userQMP, Display: "vnc", DiskBus: "virtio"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.qemu, "qemu-system-aarch64") {
		t.Errorf("QEMU is %s", p.qemu)
	}
	// This QEMU's own version decides the CPU, which it must then take.
	if cpu := armCPU("tcg", pauthImpdefKnown(versionOf(context.Background(), p.qemu))); !hasPair(p.args, "-cpu", cpu) {
		t.Errorf("-cpu %s missing from %q", cpu, p.args)
	}
	ctx, q := pausedQEMU(t, p, userQMP)
	if usernet := hmp(t, ctx, q, "info usernet"); !strings.Contains(usernet, "HOST_FORWARD") || !strings.Contains(usernet, port) {
		t.Errorf("forward to %s not set up:\n%s", port, usernet)
	}
	if blocks := hmp(t, ctx, q, "info block"); !strings.Contains(blocks, "pflash0") || !strings.Contains(blocks, "pflash1") || !strings.Contains(blocks, "AAVMF_VARS.fd") {
		t.Errorf("AAVMF missing:\n%s", blocks)
	}
	qtree := hmp(t, ctx, q, "info qtree")
	for _, dev := range []string{`dev: virtio-blk-pci`, `dev: virtio-net-pci`, `dev: pl011`, `dev: virtio-gpu-pci`, `dev: usb-kbd`} {
		if !strings.Contains(qtree, dev) {
			t.Errorf("%s missing from the machine:\n%s", dev, qtree)
		}
	}
	if chardev := hmp(t, ctx, q, "info chardev"); !strings.Contains(chardev, "serial0: filename=mux") {
		t.Errorf("serial port not on the console:\n%s", chardev)
	}
}
