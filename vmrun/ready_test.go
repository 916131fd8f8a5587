package vmrun

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readyRun boots the stand-in and powers it off once every want has
// appeared on stderr; it returns stderr and how long the first took.
func readyRun(t *testing.T, o Options, wants ...string) (string, time.Duration, error) {
	t.Helper()
	var out, errOut buffer
	o.Stdout, o.Stderr = &out, &errOut
	ctx, cancel := context.WithCancelCause(context.Background())
	start := time.Now()
	took := make(chan time.Duration, 1)
	go func() {
		errOut.waitFor(t, wants[0])
		took <- time.Since(start)
		for _, w := range wants[1:] {
			errOut.waitFor(t, w)
		}
		cancel(errors.New("test done"))
	}()
	err := Run(ctx, o)
	select {
	case d := <-took:
		return errOut.String(), d, err
	case <-time.After(10 * time.Second):
		t.Fatalf("%q never appeared:\n%s", wants, errOut.String())
	}
	return "", 0, nil
}

// --ssh prints the ssh command only once the guest's SSH server greets, and
// --wait-port says when a port answers: one that sends something, and one
// that only accepts (QEMU then lists the connection as established).
func TestReadiness(t *testing.T) {
	o := fakeRun(t, "acpi", "", `{"mode": "system", "sshUser": "dev"}`)
	t.Setenv("FAKE_PORTS", "22=SSH-2.0-fake\r\n;8000=;8001=hello")
	t.Setenv("FAKE_PORTS_AFTER", "1s")
	o.SSH, o.WaitPorts = true, []int{8000, 8001}
	stderr, took, err := readyRun(t, o, "c2vm: log in with: ssh -p ", "c2vm: port 8000 ready", "c2vm: port 8001 ready")
	if err != nil {
		t.Fatal(err)
	}
	if took < time.Second {
		t.Errorf("the ssh command came after %s, before the server answered", took)
	}
	if !regexp.MustCompile(`log in with: ssh -p \d+ dev@127\.0\.0\.1 \(or c2vm ssh linux-[0-9a-f]{8}\)`).MatchString(stderr) {
		t.Errorf("ssh line:\n%s", stderr)
	}
	for _, port := range []string{"8000", "8001"} {
		if !regexp.MustCompile(`c2vm: port ` + port + ` ready \(127\.0\.0\.1:\d+\)`).MatchString(stderr) {
			t.Errorf("port %s not said ready:\n%s", port, stderr)
		}
	}
}

// A port that does not answer within --ready-timeout fails the run, naming
// the port, and the guest is powered off.
func TestReadyTimeout(t *testing.T) {
	defer func(d time.Duration) { probeRepeat = d }(probeRepeat)
	probeRepeat = 100 * time.Millisecond
	o := fakeRun(t, "acpi", "", "")
	o.WaitPorts, o.ReadyTimeout = []int{9000}, time.Second
	var out, errOut buffer
	o.Stdout, o.Stderr = &out, &errOut
	start := time.Now()
	err := Run(context.Background(), o)
	mustUserErr(t, err, "guest port 9000 did not answer on 127.0.0.1:")
	if !strings.Contains(err.Error(), "within --ready-timeout 1s, so c2vm stopped the guest") || !strings.Contains(err.Error(), "c2vm logs linux-") {
		t.Errorf("message: %v", err)
	}
	if !strings.Contains(out.String(), "POWER BUTTON 1") || time.Since(start) > 5*time.Second {
		t.Errorf("not powered off in time:\n%s", out.String())
	}
	// The SSH server is waited for in the same way.
	o = fakeRun(t, "acpi", "", `{"sshUser": "root"}`)
	o.SSH, o.ReadyTimeout, o.Stderr = true, time.Second, &errOut
	mustUserErr(t, Run(context.Background(), o), "the guest's SSH server (port 22) did not answer on 127.0.0.1:")
}

// --ssh on a disk without keys says so and waits for nothing.
func TestSSHWithoutKeys(t *testing.T) {
	o := fakeRun(t, "console", "", `{"mode": "system"}`)
	o.SSH = true
	var errOut buffer
	o.Stderr = &errOut
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "this disk was built without SSH keys") || strings.Contains(errOut.String(), "log in with") {
		t.Errorf("stderr:\n%s", errOut.String())
	}
}

func TestEstablishedTo(t *testing.T) {
	table := "Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n" +
		"  TCP[HOST_FORWARD]  13       127.0.0.1 34567       10.0.2.15    80     0     0\r\n" +
		"  TCP[SYN_SENT]      14       127.0.0.1 34567       10.0.2.15    80     0     0\r\n" +
		"  TCP[ESTABLISHED]   15       127.0.0.1 34568       10.0.2.15  8080     0     0\r\n"
	if establishedTo(table, 80) || !establishedTo(table, 8080) || establishedTo(table, 808) {
		t.Error("misread the table")
	}
}
