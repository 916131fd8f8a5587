package vmrun

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A guest that did not power off itself is a hard power-off, not a success:
// Ctrl-a x, QEMU ended by another process's signal, or killed.
func TestHardPowerOff(t *testing.T) {
	for mode, want := range map[string]string{
		"quit":   "QEMU was quit with Ctrl-a x",
		"killed": `QEMU was ended by another process (QEMU: "qemu-system-x86_64: terminating on signal 15 from pid 4242 (kill)")`,
	} {
		o := fakeRun(t, mode, "[  OK  ] Reached target multi-user.target\r\n", "")
		mustHardStop(t, Run(context.Background(), o), want)
	}
	// A guest printing QEMU's words does not make a clean power-off fail.
	o := fakeRun(t, "console", "QEMU: Terminated\r\nreboot: Power down\r\n", "")
	if err := Run(context.Background(), o); err != nil {
		t.Errorf("clean power-off: %v", err)
	}
	// SIGKILL to QEMU.
	o = fakeRun(t, "hang", "", "")
	o.Name = "k"
	var out buffer
	o.Stdout = &out
	go func() {
		out.waitFor(t, "Booting")
		d, _ := openVMDir("k", false)
		defer d.Close()
		st, _ := d.readState()
		syscall.Kill(st.QEMUPID, syscall.SIGKILL)
	}()
	mustHardStop(t, Run(context.Background(), o), "QEMU was killed (signal: killed)")
}

// stopAfterBoot runs the stand-in in mode and cancels the run, as a
// signal does, once the guest boots; QEMU gets 200ms to exit on SIGTERM.
// It returns Run's error and the console.
func stopAfterBoot(t *testing.T, mode string, stopTimeout time.Duration) (error, string) {
	t.Helper()
	defer func(b time.Duration) { quitGrace = b }(quitGrace)
	quitGrace = 200 * time.Millisecond
	o := fakeRun(t, mode, "", "")
	o.StopTimeout = stopTimeout
	var out buffer
	o.Stdout = &out
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		out.waitFor(t, "Booting")
		cancel()
	}()
	return Run(ctx, o), out.String()
}

// --stop-timeout 0 stops QEMU at once, said as such.
func TestStopTimeoutZero(t *testing.T) {
	err, _ := stopAfterBoot(t, "deaf", -1)
	mustHardStop(t, err, "QEMU was stopped at once (--stop-timeout 0)")
	if strings.Contains(err.Error(), "negative") {
		t.Errorf("0 called negative: %v", err)
	}
}

// SIGHUP, a closed terminal, presses the power button as SIGTERM does, and
// the run's temporary files go.
func TestHangup(t *testing.T) {
	o := fakeRun(t, "acpi", "", "")
	o.Snapshot = true
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errOut buffer
	o.Stdout, o.Stderr = &out, &errOut
	go func() {
		out.waitFor(t, "Booting")
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
	}()
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "hangup signal received: pressing the guest's power button") || !strings.Contains(out.String(), "POWER BUTTON 1") {
		t.Errorf("no power button:\n%s\n%s", out.String(), errOut.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	// A QEMU that fails leaves nothing either.
	o = fakeRun(t, "fail", "", "")
	o.Snapshot = true
	if err := Run(context.Background(), o); err == nil {
		t.Fatal("QEMU's failure was not reported")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a failed QEMU left in TMPDIR: %v", left)
	}
}
