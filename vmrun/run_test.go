package vmrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// buffer is a console both Run and the test touch.
type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls until text appears in b.
func (b *buffer) waitFor(t *testing.T, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(b.String(), text) {
			return
		}
	}
	t.Fatalf("%q did not appear in:\n%s", text, b.String())
}

func mustUserErr(t *testing.T, err error, want string) {
	t.Helper()
	var ue *usererr.Error
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, want) || ue.Fix == "" {
		t.Fatalf("want a user error with %q and a fix, got %v", want, err)
	}
}

// mustHardStop wants the error of a guest powered off hard, whose message
// holds want.
func mustHardStop(t *testing.T, err error, want string) {
	t.Helper()
	var h *PoweredOffHard
	if !errors.As(err, &h) || !strings.Contains(h.Err.Msg, want) || h.Err.Fix == "" {
		t.Fatalf("want a hard power-off with %q and a fix, got %v", want, err)
	}
}

func TestTimeoutWithoutExpectFails(t *testing.T) {
	o := fakeRun(t, "hang", "", "")
	o.Timeout = 300 * time.Millisecond
	var out buffer
	o.Stdout = &out
	start := time.Now()
	err := Run(context.Background(), o)
	mustUserErr(t, err, "still running after --timeout 300ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s to stop a hung guest", d)
	}
	// The console's line is ended so c2vm's message starts its own.
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("console not ended with a newline: %q", out.String())
	}
}

func TestTimeoutWithExpect(t *testing.T) {
	o := fakeRun(t, "hang", "", "")
	o.Timeout, o.Expect = 300*time.Millisecond, "login:"
	mustUserErr(t, Run(context.Background(), o), `"login:" did not appear`)
	o.Expect = "Booting from"
	mustUserErr(t, Run(context.Background(), o), "appeared, but the guest did not power off")
}

func TestQuitOnExpect(t *testing.T) {
	o := fakeRun(t, "hang", "", appMeta)
	o.Expect, o.QuitOnExpect, o.Timeout = "Hard Disk", true, 10*time.Second
	start := time.Now()
	// App mode, yet no exit code is needed: the user chose to stop early.
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("did not stop at the text")
	}
}

func TestExpectOnPowerOff(t *testing.T) {
	o := fakeRun(t, "console", "[ ok ] Started.\r\nC2VM-MARK", "")
	o.Expect = "C2VM-MARKER"
	mustUserErr(t, Run(context.Background(), o), `powered off without printing "C2VM-MARKER"`)
	o = fakeRun(t, "console", "[ ok ] Started.\r\nC2VM-MARKER fw=bios\r\nreboot: Power down\r\n", "")
	o.Expect = "C2VM-MARKER"
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func TestAppExitCodes(t *testing.T) {
	for _, tc := range []struct {
		console string
		code    int // -1: a user error
	}{
		{"hello\r\nc2vm: exit code=0\r\nreboot: Power down\r\n", 0},
		{"hello\r\nc2vm: exit code=3\r\n[   1.2] reboot: Power down\r\n", 3},
		// The program printing a marker of its own does not fool it: init's comes last.
		{"c2vm: exit code=0\r\nmore\r\nc2vm: exit code=137\r\n", 137},
		{"[ 3.1] c2vm: exit code=42", 42}, // kernel text before, no newline at the end
		{"hello\r\nreboot: Power down\r\n", -1},
		{"c2vm: exit code=3 and more\r\n", -1},
		{"c2vm: exit code=256\r\n", -1},
	} {
		o := fakeRun(t, "console", tc.console, appMeta)
		err := Run(context.Background(), o)
		var ee *ExitError
		switch {
		case tc.code == 0 && err != nil, tc.code > 0 && (!errors.As(err, &ee) || ee.Code != tc.code):
			t.Errorf("%q: want exit code %d, got %v", tc.console, tc.code, err)
		case tc.code < 0:
			mustUserErr(t, err, "without reporting its program's exit code")
		}
	}
	// In system mode the line means nothing.
	o := fakeRun(t, "console", "c2vm: exit code=3\r\n", `{"mode": "system"}`)
	if err := Run(context.Background(), o); err != nil {
		t.Errorf("system mode: %v", err)
	}
}

func TestQEMUFailure(t *testing.T) {
	o := fakeRun(t, "fail", "", "")
	err := Run(context.Background(), o)
	mustUserErr(t, err, "Could not set up host forwarding rule")
	if !strings.Contains(err.Error(), "fix: a forwarded host port") {
		t.Errorf("no specific fix: %v", err)
	}
}

// TestKVMFailure: QEMU pauses a guest KVM cannot run; c2vm stops it and
// says to use TCG instead of waiting forever.
func TestKVMFailure(t *testing.T) {
	o := fakeRun(t, "kvmfail", "", "")
	var errOut buffer
	o.Stderr = &errOut
	start := time.Now()
	err := Run(context.Background(), o)
	mustUserErr(t, err, "KVM failed to run the guest")
	if !strings.Contains(err.Error(), "--accel tcg") || !strings.Contains(errOut.String(), "emulation failure") {
		t.Errorf("error %v, stderr %q", err, errOut.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Error("slow to notice")
	}
}

// TestGracefulStop cancels the run as SIGTERM does: the power button is
// pressed over QMP and the guest's own exit decides the result.
func TestGracefulStop(t *testing.T) {
	for _, tc := range []struct {
		meta, lastWords string
		code            int
	}{
		{"", "", 0},
		{appMeta, "c2vm: exit code=143\r\n", 143},
		{appMeta, "c2vm: exit code=0\r\n", 0},
	} {
		o := fakeRun(t, "acpi", tc.lastWords, tc.meta)
		var out, errOut buffer
		o.Stdout, o.Stderr = &out, &errOut
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() {
			out.waitFor(t, "Booting")
			cancel(errors.New("terminated signal received"))
		}()
		err := Run(ctx, o)
		var ee *ExitError
		switch {
		case tc.code == 0 && err != nil, tc.code > 0 && (!errors.As(err, &ee) || ee.Code != tc.code):
			t.Errorf("%s: want %d, got %v", tc.meta, tc.code, err)
		}
		if !strings.Contains(out.String(), "POWER BUTTON 1") || !strings.Contains(errOut.String(), "terminated signal received: pressing the guest's power button") {
			t.Errorf("no press seen:\n%s\n%s", out.String(), errOut.String())
		}
	}
}

// TestStopTimeout: a guest that ignores the button (pressed again and
// again) and QEMU that ignores SIGTERM are still stopped. The message does
// not blame the guest: one still booting does not react to the button yet.
func TestStopTimeout(t *testing.T) {
	defer func(a time.Duration) { powerButtonRepeat = a }(powerButtonRepeat)
	powerButtonRepeat = 50 * time.Millisecond
	start := time.Now()
	err, console := stopAfterBoot(t, "deaf", 500*time.Millisecond)
	mustHardStop(t, err, "did not power off within 500ms of its power button (--stop-timeout)")
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stop took %s", d)
	}
	if !strings.Contains(console, "POWER BUTTON 3") {
		t.Errorf("the button was not pressed again:\n%s", console)
	}
	if !strings.Contains(err.Error(), "It had run for 0s: a guest still booting, or one without systemd-logind or acpid, does not react to the button.") || strings.Contains(err.Error(), "let the guest handle") {
		t.Errorf("blames the guest: %v", err)
	}
}

// TestSecondSignal: while the guest gets its grace period, another SIGTERM
// to c2vm stops QEMU at once.
func TestSecondSignal(t *testing.T) {
	defer func(b time.Duration) { quitGrace = b }(quitGrace)
	quitGrace = 200 * time.Millisecond
	o := fakeRun(t, "deaf", "", "")
	o.StopTimeout = time.Minute
	var out, errOut buffer
	o.Stdout, o.Stderr = &out, &errOut
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		out.waitFor(t, "Booting")
		cancel()
		// The note is printed once the second signal is being watched for.
		errOut.waitFor(t, "signal again to stop at once")
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
	start := time.Now()
	mustHardStop(t, Run(ctx, o), "a second terminated arrived")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
}

// TestRunPassesOptions checks, through the stand-in, that Run hands QEMU
// what the options and the disk's c2vm.json ask for.
func TestRunPassesOptions(t *testing.T) {
	o := fakeRun(t, "console", "", `{"mode": "system", "exposedPorts": ["8000/tcp", "53/udp"]}`)
	argsFile := filepath.Join(t.TempDir(), "args.json")
	t.Setenv("FAKE_ARGS", argsFile)
	o.Ports = []string{"127.0.0.1:0:22"}
	if err := Run(context.Background(), o); err == nil {
		t.Fatal("host port 0 accepted")
	}
	port := freePort(t)
	o.Ports = []string{"127.0.0.1:" + port + ":22"}
	o.Snapshot, o.QMP, o.DiskSize = true, filepath.Join(t.TempDir(), "user.sock"), "keep"
	var errOut buffer
	o.Stderr = &errOut
	line := strings.Join(runArgs(t, o, argsFile), " ")
	for _, want := range []string{"hostfwd=tcp:127.0.0.1:" + port + "-:22", "-:8000", "/overlay.qcow2,format=qcow2", "path=" + o.QMP + ",server=on"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q missing from %s", want, line)
		}
	}
	for _, want := range []string{"c2vm: port 22/tcp → 127.0.0.1:" + port, "c2vm: port 8000/tcp → 127.0.0.1:", `not forwarding exposed port "53/udp"`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("%q missing from stderr:\n%s", want, errOut.String())
		}
	}
}
