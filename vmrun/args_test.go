package vmrun

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/hosttools"
)

// hasPair reports whether args hold flag followed by value.
func hasPair(args []string, flag, value string) bool {
	for i := range len(args) - 1 {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

func testPlan(t *testing.T, o Options) *plan {
	work := t.TempDir()
	format := "raw"
	if strings.HasSuffix(o.Disk, ".qcow2") {
		format = "qcow2"
	}
	return &plan{o: withDefaults(o), work: work, qmp: filepath.Join(work, "qmp.sock"), image: diskImage{Format: format}, drive: o.Disk, driveFormat: format}
}

func TestQEMUArgsDefaults(t *testing.T) {
	p := testPlan(t, Options{Disk: "/d/linux.img"})
	args, err := p.qemuArgs("tcg", "bios")
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{
		{"-machine", "q35"}, {"-accel", "tcg"}, {"-m", "1024M"}, {"-smp", "2"}, {"-serial", "mon:stdio"},
		{"-drive", "file=/d/linux.img,format=raw,if=virtio"},
		{"-netdev", "user,id=net0"}, {"-device", "virtio-net-pci,netdev=net0"},
		{"-chardev", "socket,id=c2vm-qmp,path=" + p.qmp + ",server=on,wait=off"},
		{"-mon", "chardev=c2vm-qmp,mode=control"},
	} {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("%s %s missing from %q", pair[0], pair[1], args)
		}
	}
	for _, absent := range []string{"-snapshot", "-cpu", "if=pflash"} {
		if strings.Contains(strings.Join(args, " "), absent) {
			t.Errorf("%s in %q", absent, args)
		}
	}
	if !slices.Contains(args, "-no-reboot") || !slices.Contains(args, "-nographic") {
		t.Errorf("no -no-reboot/-nographic: %q", args)
	}
}

func TestQEMUArgsOptions(t *testing.T) {
	p := testPlan(t, Options{Disk: "/d/a,b/linux.qcow2", Memory: "2G", CPUs: 4, QMP: "/run/x,y.sock"})
	p.forwards = []Forward{{"0.0.0.0", 8080, 80}, {"127.0.0.1", 8000, 8000}}
	args, err := p.qemuArgs("kvm", "bios")
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{
		{"-m", "2G"}, {"-smp", "4"}, {"-cpu", "host"}, {"-accel", "kvm"},
		// A comma in a path is doubled: still one file name to QEMU.
		{"-drive", "file=/d/a,,b/linux.qcow2,format=qcow2,if=virtio"},
		{"-netdev", "user,id=net0,hostfwd=tcp:0.0.0.0:8080-:80,hostfwd=tcp:127.0.0.1:8000-:8000"},
		{"-chardev", "socket,id=user-qmp,path=/run/x,,y.sock,server=on,wait=off"},
		{"-mon", "chardev=user-qmp,mode=control"},
	} {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("%s %s missing from %q", pair[0], pair[1], args)
		}
	}
}

func TestQEMUArgsUEFI(t *testing.T) {
	old := ovmfDir
	defer func() { ovmfDir = old }()
	ovmfDir = t.TempDir()
	p := testPlan(t, Options{Disk: "/d/linux.img"})
	if _, err := p.qemuArgs("tcg", "uefi"); err == nil || !strings.Contains(err.Error(), "apt-get install ovmf") {
		t.Errorf("missing OVMF: %v", err)
	}
	os.WriteFile(filepath.Join(ovmfDir, "OVMF_CODE_4M.fd"), []byte("code"), 0o644)
	os.WriteFile(filepath.Join(ovmfDir, "OVMF_VARS_4M.fd"), []byte("vars"), 0o644)
	args, err := p.qemuArgs("tcg", "uefi")
	if err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(p.work, "OVMF_VARS.fd")
	if !hasPair(args, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+filepath.Join(ovmfDir, "OVMF_CODE_4M.fd")) ||
		!hasPair(args, "-drive", "if=pflash,format=raw,unit=1,file="+vars) {
		t.Errorf("pflash drives missing: %q", args)
	}
	// Each run gets a fresh copy of the variable store.
	if b, _ := os.ReadFile(vars); string(b) != "vars" {
		t.Errorf("variable store copy holds %q", b)
	}
}

func TestCheckDisk(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := checkDisk(filepath.Join(dir, "none.img"), false); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing disk: %v", err)
	}
	if _, _, err := checkDisk(dir, false); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	// A relative name comes back absolute, so "nbd:x" stays a file name.
	t.Chdir(dir)
	os.WriteFile("nbd:x", nil, 0o644)
	if abs, _, err := checkDisk("nbd:x", false); err != nil || abs != filepath.Join(dir, "nbd:x") {
		t.Errorf("relative disk: %q %v", abs, err)
	}
}

// TestArgsAcceptedByQEMU starts the real QEMU, paused, with the command
// line Run builds (UEFI, a qcow2 disk under a path with a comma, port
// forwards, the user's QMP socket) and asks it over QMP what it set up.
func TestArgsAcceptedByQEMU(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	needTool(t, "qemu-img")
	if _, err := os.Stat(filepath.Join(ovmfDir, "OVMF_CODE_4M.fd")); err != nil && os.Getenv("C2VM_REQUIRE_TOOLS") == "" {
		t.Skip("no OVMF")
	}
	dir := filepath.Join(t.TempDir(), "a,b")
	os.Mkdir(dir, 0o755)
	disk := filepath.Join(dir, "linux.qcow2")
	raw := filepath.Join(t.TempDir(), "mbr.img")
	mbr := make([]byte, 64<<20)
	mbr[510], mbr[511] = 0x55, 0xAA
	os.WriteFile(raw, mbr, 0o644)
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v %s", err, b)
	}
	port := freePort(t)
	userQMP := filepath.Join(t.TempDir(), "user.sock")
	userData := filepath.Join(t.TempDir(), "user data,x.yaml")
	os.WriteFile(userData, []byte("#cloud-config\nhostname: h\n"), 0o644)
	p, err := prepare(context.Background(), Options{Disk: disk, Firmware: "uefi", Accel: "tcg", Snapshot: true,
		Ports: []string{"127.0.0.1:" + port + ":22"}, QMP: userQMP, SSH: true, CloudInit: userData, Display: "vnc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, q := pausedQEMU(t, p, userQMP)
	usernet := hmp(t, ctx, q, "info usernet")
	if !strings.Contains(usernet, "HOST_FORWARD") || !strings.Contains(usernet, port) {
		t.Errorf("forward to %s not set up:\n%s", port, usernet)
	}
	if blocks := hmp(t, ctx, q, "info block"); !strings.Contains(blocks, disk) || !strings.Contains(blocks, "pflash") || !strings.Contains(blocks, "/cidata.img") {
		t.Errorf("disk, firmware or cloud-init seed missing:\n%s", blocks)
	}
	if vnc := hmp(t, ctx, q, "info vnc"); !strings.Contains(vnc, p.vnc) || p.sshLine != "ssh -p "+port+" root@127.0.0.1" {
		t.Errorf("VNC not on %s, or ssh line %q:\n%s", p.vnc, p.sshLine, vnc)
	}
	if _, err := q.execute(ctx, "no-such-command", nil); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("QMP error not reported: %v", err)
	}
}

// pausedQEMU starts p's QEMU paused (-S) and connects to the user's QMP
// socket userQMP. At the test's end it quits QEMU through c2vm's own
// monitor, which answers while the user holds theirs, and wants QEMU to
// exit cleanly.
func pausedQEMU(t *testing.T, p *plan, userQMP string) (context.Context, *qmpClient) {
	t.Helper()
	t.Cleanup(func() { os.RemoveAll(p.work) })
	cmd := exec.Command(p.qemu, append(p.args, "-S")...)
	out := &buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	q, err := dialQMP(ctx, userQMP)
	if err != nil {
		cmd.Process.Kill()
		cancel()
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		defer cancel()
		defer cmd.Process.Kill()
		defer q.Close()
		own, err := dialQMP(ctx, p.qmp)
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		if _, err := own.execute(ctx, "quit", nil); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("QEMU: %v\n%s", err, out.String())
		}
	})
	return ctx, q
}

// TestKVMProbeRuns runs the KVM probe's firmware under TCG: it must reach
// the exit port, or a host with working KVM would be taken for one without.
func TestKVMProbeRuns(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	qemu, _ := hosttools.Look("qemu-system-x86_64")
	bios := filepath.Join(t.TempDir(), "probe.bin")
	os.WriteFile(bios, kvmProbe(), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-display", "none",
		"-bios", bios, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("probe under TCG: %v, want exit status 3", err)
	}
}

func hmp(t *testing.T, ctx context.Context, q *qmpClient, command string) string {
	t.Helper()
	r, err := q.execute(ctx, "human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	json.Unmarshal(r, &s)
	return s
}

// A run boots c2vm's qcow2 overlay, whatever the disk's own format.
func TestOverlayFormat(t *testing.T) {
	p := testPlan(t, Options{Disk: "/d/linux.img"})
	p.drive, p.driveFormat = "/w/overlay.qcow2", "qcow2"
	args, err := p.qemuArgs("tcg", "bios")
	if err != nil {
		t.Fatal(err)
	}
	if !hasPair(args, "-drive", "file=/w/overlay.qcow2,format=qcow2,if=virtio") {
		t.Errorf("overlay not booted as qcow2: %q", args)
	}
}
