package vmrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/hosttools"
)

const secureGlobal = "driver=cfi.pflash01,property=secure,value=on"

// fakeOVMF puts stand-ins for Debian's OVMF files, each holding its own
// name, in a directory of the test's, and returns it.
func fakeOVMF(t *testing.T, names ...string) string {
	t.Helper()
	old := ovmfDir
	t.Cleanup(func() { ovmfDir = old })
	ovmfDir = t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(ovmfDir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ovmfDir
}

var allOVMF = []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"}

// pflashArgs are the two drives of code and vars.
func pflashArgs(code, vars string) [][2]string {
	return [][2]string{
		{"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code},
		{"-drive", "if=pflash,format=raw,unit=1,file=" + vars},
	}
}

func mustPairs(t *testing.T, args []string, pairs [][2]string) {
	t.Helper()
	for _, pair := range pairs {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("%s %s missing from %q", pair[0], pair[1], args)
		}
	}
}

func mustRead(t *testing.T, path, want string) {
	t.Helper()
	if b, err := os.ReadFile(path); err != nil || string(b) != want {
		t.Errorf("%s holds %q (%v), want %q", path, b, err, want)
	}
}

// TestSecureBootRun runs the stand-in QEMU with --secure-boot on a disk
// whose table names no firmware: the run boots UEFI's Secure Boot build on
// q35 with SMM, from a copy of the Microsoft-keys store of the VM's own,
// and says which firmware it used. The VM keeps that store, and a plain
// UEFI run of the same VM uses its other store, without touching it.
func TestSecureBootRun(t *testing.T) {
	needTool(t, "qemu-img")
	dir := fakeOVMF(t, allOVMF...)
	o := fakeRun(t, "console", "", "")
	o.Firmware, o.Name, o.SecureBoot = "", "sb", true
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	var errOut buffer
	o.Stderr = &errOut
	args := runArgs(t, o, argsFile)
	code := filepath.Join(dir, "OVMF_CODE_4M.secboot.fd")
	vmDir := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms/sb")
	secVars := filepath.Join(vmDir, secbootVarsFile)
	mustPairs(t, args, append(pflashArgs(code, secVars), [2]string{"-machine", "q35,smm=on"}, [2]string{"-global", secureGlobal}))
	mustRead(t, secVars, "OVMF_VARS_4M.ms.fd")
	if want := "c2vm: firmware: UEFI Secure Boot (enforcing, Microsoft keys): " + code + "\n"; !strings.Contains(errOut.String(), want) {
		t.Errorf("no %q on stderr:\n%s", want, errOut.String())
	}

	// What the guest enrolled stays for the VM's next Secure Boot run.
	os.WriteFile(secVars, []byte("enrolled"), 0o600)
	runArgs(t, o, argsFile)
	mustRead(t, secVars, "enrolled")

	// A plain UEFI run of the VM boots its plain store, and says nothing.
	o.Firmware, o.SecureBoot, errOut = "uefi", false, buffer{}
	args = runArgs(t, o, argsFile)
	mustPairs(t, args, append(pflashArgs(filepath.Join(dir, "OVMF_CODE_4M.fd"), filepath.Join(vmDir, varsFile)), [2]string{"-machine", "q35"}))
	if line := strings.Join(args, " "); strings.Contains(line, "smm=on") || strings.Contains(line, secureGlobal) {
		t.Errorf("Secure Boot's options in a plain UEFI run: %s", line)
	}
	mustRead(t, filepath.Join(vmDir, varsFile), "OVMF_VARS_4M.fd")
	mustRead(t, secVars, "enrolled")
	if strings.Contains(errOut.String(), "c2vm: firmware:") {
		t.Errorf("firmware note in a plain run:\n%s", errOut.String())
	}
}

// TestSecureBootSnapshot: a run that keeps nothing boots a fresh copy of
// the Microsoft-keys store from its temporary directory.
func TestSecureBootSnapshot(t *testing.T) {
	dir := fakeOVMF(t, allOVMF...)
	p := testPlan(t, Options{Disk: "/d/linux.img", SecureBoot: true})
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(p.work, secbootVarsFile)
	mustPairs(t, args, append(pflashArgs(filepath.Join(dir, "OVMF_CODE_4M.secboot.fd"), vars), [2]string{"-machine", "q35,smm=on"}, [2]string{"-global", secureGlobal}))
	mustRead(t, vars, "OVMF_VARS_4M.ms.fd")
}

// TestSecureBootMissingFirmware: without the Secure Boot build (or its
// store) the run names the package, as for plain UEFI.
func TestSecureBootMissingFirmware(t *testing.T) {
	for _, have := range [][]string{
		{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_VARS_4M.ms.fd"},
		{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd"},
	} {
		fakeOVMF(t, have...)
		p := testPlan(t, Options{Disk: "/d/linux.img", SecureBoot: true})
		_, err := p.qemuArgs("tcg", "uefi")
		var m *hosttools.MissingToolError
		if !errors.As(err, &m) || m.Package != "ovmf" || !strings.Contains(m.Tool, "Secure Boot") {
			t.Errorf("with only %q: %v", have, err)
		}
	}
}

// TestSecureBootRefuses: options that would boot anything but the Secure
// Boot firmware on q35 with SMM are user errors with a fix.
func TestSecureBootRefuses(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Firmware: "bios"}, "--firmware bios asks for SeaBIOS"},
		{Options{Machine: "pc"}, "--secure-boot needs the q35 machine, not --machine pc"},
		{Options{DiskBus: "ide"}, "--secure-boot needs q35, which has no IDE controller"},
		{Options{Boot: "kernel"}, "--boot kernel starts the kernel without firmware"},
	} {
		c.o.SecureBoot = true
		mustUserErr(t, checkOptions(withDefaults(c.o)), c.want)
	}
	for _, ok := range []Options{{}, {Firmware: "uefi", Machine: "q35"}, {Firmware: "auto", Boot: "firmware"}, {Boot: "auto", DiskBus: "sata"}} {
		ok.SecureBoot = true
		if err := checkOptions(withDefaults(ok)); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// TestSecureBootNoDirectBoot: an app disk, which --boot auto starts
// directly on the lean machine, boots through the Secure Boot firmware on
// q35 with SMM instead.
func TestSecureBootNoDirectBoot(t *testing.T) {
	fakeOVMF(t, allOVMF...)
	disk := testDisk(t, appGrubCfg(testArgs), appFiles(testBzImage(testVmlinux(true)), testInitramfs()))
	p := directPlan(t, disk, Options{SecureBoot: true}, "tcg")
	p.planBoot(context.Background())
	if p.direct != nil || len(p.notes) != 0 {
		t.Fatalf("direct boot %+v, notes %q", p.direct, p.notes)
	}
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	mustPairs(t, args, [][2]string{{"-machine", "q35,smm=on"}, {"-global", secureGlobal}})
	line := strings.Join(args, " ")
	for _, absent := range []string{"-kernel", "-nodefaults", "romfile=", "-bios"} {
		if strings.Contains(line, absent) {
			t.Errorf("%s in %s", absent, line)
		}
	}
}
