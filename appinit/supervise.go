package appinit

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Supervisor is PID 1's loop around the program: the one place that reaps
// (orphans reparented to PID 1 included), forwards signals and stops the
// program. It is a type so that tests can drive it as a subreaper on the
// host with a killAll confined to their own process group.
type Supervisor struct {
	Main        int                  // the program's pid
	Signals     <-chan os.Signal     // what PID 1 receives (signal.Notify)
	PowerButton <-chan struct{}      // ACPI power button presses
	StopSignal  syscall.Signal       // sent to the program on a stop request
	StopTimeout time.Duration        // then SIGKILL to everything
	Grace       time.Duration        // for leftovers after the program exits
	KillAll     func(syscall.Signal) // in the guest: kill(-1, sig)
	Logf        func(string, ...any) // console notes
	status      int                  // the program's exit code, once known
	exited      bool                 // the program has been reaped
}

// Run supervises until the program has exited and every other process is
// gone, and returns the program's exit code: its status, or 128+signal.
func (s *Supervisor) Run() int {
	var kill <-chan time.Time
	stop := func() {
		if kill != nil {
			return // a second request changes nothing, as with docker stop
		}
		s.Logf("stopping: %s to the program, SIGKILL in %s", unix.SignalName(s.StopSignal), s.StopTimeout)
		unix.Kill(s.Main, s.StopSignal)
		kill = time.After(s.StopTimeout)
	}
	tick := time.NewTicker(time.Second) // a safety net: SIGCHLDs coalesce
	defer tick.Stop()
	for s.reap(); !s.exited; s.reap() {
		select {
		case sig := <-s.Signals:
			switch sig {
			case syscall.SIGCHLD:
			case syscall.SIGTERM:
				stop()
			default:
				unix.Kill(s.Main, sig.(syscall.Signal))
			}
		case <-s.PowerButton:
			stop()
		case <-kill:
			s.Logf("the program did not stop in %s: SIGKILL", s.StopTimeout)
			s.KillAll(syscall.SIGKILL)
		case <-tick.C:
		}
	}
	s.killLeftovers()
	return s.status
}

// reap collects every exited child without blocking and reports whether
// none is left (ECHILD).
func (s *Supervisor) reap() (none bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return true
		case pid <= 0:
			return false
		case pid == s.Main:
			s.exited, s.status = true, exitCode(ws)
		}
	}
}

// exitCode is the shell's convention: the status, or 128+signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// killLeftovers ends what the program left running (daemons it forked,
// children it did not wait for): SIGTERM, Grace to exit, then SIGKILL.
// Everything left descends from PID 1, so no child at all means no process.
func (s *Supervisor) killLeftovers() {
	if s.reap() {
		return
	}
	s.KillAll(syscall.SIGTERM)
	if s.waitGone(s.Grace) {
		return
	}
	s.Logf("processes left after %s: SIGKILL", s.Grace)
	s.KillAll(syscall.SIGKILL)
	if !s.waitGone(5 * time.Second) {
		s.Logf("processes survive SIGKILL (stuck in the kernel?): shutting down anyway")
	}
}

func (s *Supervisor) waitGone(d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s.reap() {
			return true
		}
	}
	return s.reap()
}
