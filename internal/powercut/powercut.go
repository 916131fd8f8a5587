// Package powercut cuts a VM's power in tests: it starts a named VM with
// c2vm run and SIGKILLs its QEMU, as a host losing power would, at a
// random moment of the boot. The boot tests and the test world's
// reliability tests share it.
package powercut

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Window is when a cut falls: From after c2vm run starts, plus up to Spread.
type Window struct {
	From, Spread time.Duration
}

// FirstBoot spans a first boot under TCG: the root's growth, systemd's
// first-boot set-up, host keys.
var FirstBoot = Window{From: 3 * time.Second, Spread: 27 * time.Second}

// Cuts boots the VM name of disk n times and cuts each boot's power at a
// random moment of w. The VM's state directory (under XDG_STATE_HOME) keeps
// its overlay from one boot to the next. c2vm run must report each cut as
// a hard power-off, exit status 137.
func Cuts(t testing.TB, c2vm, name, disk string, n int, w Window, flags ...string) {
	t.Helper()
	state := filepath.Join(os.Getenv("XDG_STATE_HOME"), "c2vm", "vms", name, "state.json")
	for i := range n {
		cmd := exec.Command(c2vm, append(append([]string{"run", "--name", name, "--timeout", "10m"}, flags...), disk)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		at := w.From + time.Duration(rand.Int64N(int64(w.Spread)+1))
		pid := 0
		for deadline := time.Now().Add(at); time.Now().Before(deadline) || pid == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline.Add(time.Minute)) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("cut %d: no QEMU in %s\n%s", i+1, state, last(out.String(), 2000))
			}
			pid = qemuPID(state)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Errorf("cut %d at %s: c2vm run ended with %v, want exit 137 for a hard power-off\n%s", i+1, at, err, last(out.String(), 1500))
		}
		t.Logf("cut %d at %s", i+1, at.Round(100*time.Millisecond))
	}
}

// qemuPID reads the running VM's QEMU from its state file; 0 while there
// is none yet.
func qemuPID(state string) int {
	var st struct {
		QEMUPID int `json:"qemuPid"`
	}
	if b, err := os.ReadFile(state); err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	return st.QEMUPID
}

func last(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
