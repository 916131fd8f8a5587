package vmrun

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// detach starts o's VM in the background, its supervisor this test binary
// (see TestMain), and stops it hard when the test ends.
func detach(t *testing.T, o Options) error {
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	state := os.Getenv("XDG_STATE_HOME")
	t.Cleanup(func() {
		os.Setenv("XDG_STATE_HOME", state)
		Stop(o.Name, -1, io.Discard)
	})
	return Detach(context.Background(), o, []string{self, "supervise"})
}

// A named VM in the background: Detach returns once its SSH server answers;
// a second run of its name is refused; List, Logs and SSHArgs see it; Stop
// presses its power button and reports a clean power-off; Remove refuses
// it while it runs and removes it after.
func TestDetachedVM(t *testing.T) {
	o := fakeRun(t, "acpi", "", `{"mode": "system", "sshUser": "dev"}`)
	t.Setenv("FAKE_PORTS", "22=SSH-2.0-fake\r\n")
	o.Name, o.SSH = "a", true
	var errOut buffer
	o.Stderr = &errOut
	ctx := context.Background()
	if err := detach(t, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c2vm: log in with: ssh -p ", "c2vm: VM a runs in the background: c2vm logs a shows its console"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("%q not said:\n%s", want, errOut.String())
		}
	}
	mustUserErr(t, Run(ctx, o), "VM a is running already")
	vms, err := List()
	if err != nil || len(vms) != 1 || vms[0].Name != "a" || vms[0].Status() != "running" || vms[0].Disk != o.Disk || vms[0].Mode != modeOverlay {
		t.Fatalf("ls: %+v %v", vms, err)
	}
	ssh, _ := findForward(vms[0].Forwards, 22)
	argv, err := SSHArgs(ctx, "a", 5*time.Second, "/k/id", []string{"uname", "-a"}, &errOut)
	known := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms/a/known_hosts")
	want := []string{"ssh", "-p", itoa(ssh.Host), "-o", "HostKeyAlias=c2vm-a", "-o", `UserKnownHostsFile="` + known + `"`,
		"-o", "StrictHostKeyChecking=accept-new", "-i", "/k/id", "-o", "IdentitiesOnly=yes", "--", "dev@127.0.0.1", "uname", "-a"}
	if err != nil || !slices.Equal(argv, want) {
		t.Errorf("ssh: %q %v\nwant %q", argv, err, want)
	}
	mustUserErr(t, Remove("a", false, &errOut), "VM a is running")
	var stopOut buffer
	if err := Stop("a", 10*time.Second, &stopOut); err != nil || !strings.Contains(stopOut.String(), "c2vm: VM a powered off") {
		t.Fatalf("stop: %v %s", err, stopOut.String())
	}
	var logs buffer
	if err := Logs(ctx, "a", true, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Booting from Hard Disk", "POWER BUTTON 1", "c2vm: c2vm stop: pressing the guest's power button", "c2vm: the guest powered off"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("%q not in the log:\n%s", want, logs.String())
		}
	}
	if vms, _ := List(); len(vms) != 1 || vms[0].Status() != "stopped: powered off" {
		t.Errorf("ls after stop: %+v", vms)
	}
	if err := Stop("a", time.Second, &stopOut); err != nil || !strings.Contains(stopOut.String(), "VM a is not running") {
		t.Errorf("stop of a stopped VM: %v %s", err, stopOut.String())
	}
	mustUserErr(t, func() error { _, err := SSHArgs(ctx, "a", time.Second, "", nil, &errOut); return err }(), "VM a is not running")
	if err := Remove("a", false, &errOut); err != nil {
		t.Fatal(err)
	}
	if vms, _ := List(); len(vms) != 0 {
		t.Errorf("ls after rm: %+v", vms)
	}
}

// A guest that ignores its power button is stopped hard after c2vm stop's
// timeout, reported as such; c2vm rm -f removes a running VM.
func TestStopHard(t *testing.T) {
	o := fakeRun(t, "stubborn", "", "")
	o.Name = "b"
	if err := detach(t, o); err != nil {
		t.Fatal(err)
	}
	err := Stop("b", 300*time.Millisecond, os.Stderr)
	mustHardStop(t, err, "the guest did not power off within 300ms of its power button (c2vm stop --timeout)")
	if vms, _ := List(); len(vms) != 1 || vms[0].Status() != "stopped: powered off hard (137)" {
		t.Errorf("ls after a hard stop: %+v", vms)
	}
	if err := detach(t, o); err != nil {
		t.Fatal(err)
	}
	if err := Remove("b", true, os.Stderr); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm/vms/b")); err == nil {
		t.Error("rm -f left the VM")
	}
}

// c2vm ssh says when a disk has no keys, and gives up on a server that
// does not answer.
func TestSSHRefusals(t *testing.T) {
	o := fakeRun(t, "acpi", "", `{"mode": "system"}`)
	o.Name = "nokeys"
	ctx := context.Background()
	if err := detach(t, o); err != nil {
		t.Fatal(err)
	}
	_, err := SSHArgs(ctx, "nokeys", time.Second, "", nil, os.Stderr)
	mustUserErr(t, err, "was built without SSH keys")
	if !strings.Contains(err.Error(), "docs/getting-in.md") {
		t.Errorf("no way to add keys: %v", err)
	}
	dir := t.TempDir()
	o.Disk, o.Name = mbrDisk(t, dir, 4096), "silent"
	os.WriteFile(filepath.Join(dir, "c2vm.json"), []byte(`{"mode": "system", "sshUser": "root"}`), 0o644)
	if err := detach(t, o); err != nil {
		t.Fatal(err)
	}
	var errOut buffer
	start := time.Now()
	_, err = SSHArgs(ctx, "silent", time.Second, "", nil, &errOut)
	mustUserErr(t, err, "VM silent's SSH server did not answer on 127.0.0.1:")
	if !strings.Contains(errOut.String(), "waiting up to 1s for VM silent's SSH server") || time.Since(start) > 5*time.Second {
		t.Errorf("wait: %s %s", time.Since(start), errOut.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
