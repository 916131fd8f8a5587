package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/c2vm/c2vm/vmrun"
)

// The commands for named VMs answer without a VM to work on: ls lists
// none, the others name the VM that is not there; run refuses a bad name
// and contradicting flags before it looks at the disk.
func TestVMCommands(t *testing.T) {
	env := []string{"XDG_STATE_HOME=" + t.TempDir()}
	ls := exec.Command(c2vm, "ls")
	ls.Env = append(os.Environ(), env...)
	out, err := ls.Output()
	if err != nil || strings.TrimSpace(string(out)) != "NAME  STATE  DISK  PORTS" {
		t.Errorf("ls: %v %q", err, out)
	}
	disk := filepath.Join(t.TempDir(), "linux.img")
	os.WriteFile(disk, make([]byte, 4096), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"stop", "web"}, "there is no VM named web"},
		{[]string{"logs", "web"}, "there is no VM named web"},
		{[]string{"ssh", "web", "uname", "-a"}, "there is no VM named web"},
		{[]string{"rm", "-f", "web"}, "there is no VM named web"},
		{[]string{"rm", "Web"}, `bad VM name "Web"`},
		{[]string{"run", "--name", "a/b", disk}, `bad VM name "a/b"`},
		{[]string{"run", "--snapshot", "--in-place", disk}, "--snapshot and --in-place contradict each other"},
		{[]string{"run", "--wait-port", "0", disk}, "--wait-port 0 is not a port"},
	} {
		err, stderr := runC2VM(t, env, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "fix:") || strings.Count(stderr, "c2vm:") != 1 {
			t.Errorf("c2vm %v: %v\n%s", c.args, err, stderr)
		}
	}
}

// A guest powered off hard exits 137 after its message; other errors are
// left to main.
func TestExitStatus(t *testing.T) {
	var exit *vmrun.ExitError
	hard := &vmrun.PoweredOffHard{Err: usererr.New("QEMU was quit with Ctrl-a x", "power it off from inside")}
	if err := exitStatus(hard); !errors.As(err, &exit) || exit.Code != 137 {
		t.Errorf("hard power-off: %v", err)
	}
	plain := usererr.New("x", "y")
	if err := exitStatus(plain); err != plain {
		t.Errorf("other error: %v", err)
	}
}
