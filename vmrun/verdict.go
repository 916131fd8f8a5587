package vmrun

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/internal/usererr"
)

// verdict turns what happened into Run's result. A run that ended any way
// but the guest powering off by itself (or on the power button we pressed)
// fails, so that a hung guest never looks like success.
func (p *plan) verdict(r *outcome) error {
	o := p.o
	switch r.stop {
	case stoppedOnExpect:
		return nil
	case stoppedOnTimeout:
		return timeoutError(o, r.found)
	case stoppedOnKVMError:
		return usererr.New("KVM failed to run the guest (QEMU: \""+kvmFailure+"\"; its register dump is above), so c2vm stopped QEMU",
			"use --accel tcg or C2VM_ACCEL=tcg: KVM on this host (often a nested one) cannot run this guest")
	case stoppedNotReady:
		return r.cause
	case stoppedOnSignal:
		if r.hard != "" {
			return poweredOffHard(strings.TrimSpace(fmt.Sprintf("stopped (%v): %s, so c2vm stopped QEMU hard: a power cut for the guest. %s", r.cause, r.hard, r.hint)),
				"none if you meant it; to let the guest shut down cleanly, stop it once it has booted, or give it longer (--stop-timeout, c2vm stop --timeout)")
		}
		if o.Expect != "" && !r.found {
			return usererr.New(fmt.Sprintf("stopped (%v) before %q appeared on the console; the guest powered off", r.cause, o.Expect),
				"let the run finish, or give it a --timeout instead of stopping it")
		}
	case notStopped:
		if err := p.cutOff(r); err != nil {
			return err
		}
		if r.waitErr != nil {
			return qemuError(r)
		}
		if o.Expect != "" && !r.found {
			return usererr.New(fmt.Sprintf("the guest powered off without printing %q on its console", o.Expect),
				"check the console above for what the guest did instead, or fix the --expect text")
		}
	}
	if !p.appMode() {
		return nil
	}
	switch {
	case r.code < 0 && r.stop == stoppedOnSignal:
		return usererr.New(fmt.Sprintf("stopped (%v): the guest powered off, but its program reported no exit code", r.cause),
			"none needed if you meant to stop it; an app that should report one must exit on SIGTERM")
	case r.code < 0:
		return usererr.New(fmt.Sprintf("the guest stopped without reporting its program's exit code (no %q line on the console)", exitMarker+"N"),
			"check the console above: the program's init may have crashed (a kernel panic?) or QEMU was quit with Ctrl-a x; reassembling the disk with this c2vm gives it a current init")
	case r.code > 0:
		return &ExitError{Code: r.code}
	}
	return nil
}

// cutOff tells a QEMU that exited without the guest powering off: quit
// with Ctrl-a x, or ended by another process's signal.
func (p *plan) cutOff(r *outcome) error {
	fix := "to shut the guest down cleanly, power it off from inside, or press its power button: SIGTERM to c2vm run"
	if p.name != "" {
		fix += ", or c2vm stop " + p.name
	}
	var ee *exec.ExitError
	switch {
	case r.quit:
		return poweredOffHard("QEMU was quit with Ctrl-a x: a power cut for the guest, whose last writes may be lost", fix)
	case errors.As(r.waitErr, &ee) && signaled(ee):
		return poweredOffHard(fmt.Sprintf("QEMU was killed (%v): a power cut for the guest, whose last writes may be lost", r.waitErr), fix)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "terminating on signal") {
			return poweredOffHard(fmt.Sprintf("QEMU was ended by another process (QEMU: %q): a power cut for the guest", strings.TrimSpace(l)), fix)
		}
	}
	return nil
}

func signaled(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

func timeoutError(o Options, found bool) error {
	switch {
	case o.Expect == "":
		return usererr.New(fmt.Sprintf("the guest was still running after --timeout %s, so c2vm stopped it", o.Timeout),
			"check the console above for where it stopped; give it a longer --timeout, or use --expect TEXT --quit-on-expect to stop at a message")
	case !found:
		return usererr.New(fmt.Sprintf("%q did not appear on the console within --timeout %s, so c2vm stopped the guest", o.Expect, o.Timeout),
			"check the console above for where the boot stopped, or give it a longer --timeout")
	}
	return usererr.New(fmt.Sprintf("%q appeared, but the guest did not power off within --timeout %s", o.Expect, o.Timeout),
		"add --quit-on-expect to stop as soon as it appears, or make the guest power off")
}

// qemuError reports QEMU failing on its own, with the end of what it said.
func qemuError(r *outcome) error {
	msg := strings.TrimSpace(r.stderr)
	if msg == "" {
		msg = "(no message)"
	}
	fix := "see QEMU's message above; with KVM trouble, try --accel tcg"
	switch {
	case strings.Contains(msg, "host forwarding rule"):
		fix = "a forwarded host port was taken meanwhile: choose another with -p, or leave out the disk's ports with --no-expose"
	case strings.Contains(msg, "lock"):
		fix = "another QEMU (another c2vm run?) uses this disk: stop it, or add --snapshot"
	}
	return usererr.New(fmt.Sprintf("QEMU failed (%v):\n%s", r.waitErr, msg), fix)
}
