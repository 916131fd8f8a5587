package vmrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

type stopReason int

const (
	notStopped        stopReason = iota // QEMU exited by itself: the guest powered off, Ctrl-a x, or a kill
	stoppedOnTimeout                    // Options.Timeout passed
	stoppedOnExpect                     // QuitOnExpect and the text appeared
	stoppedOnSignal                     // ctx was cancelled, SIGHUP, or c2vm stop
	stoppedOnKVMError                   // KVM failed and QEMU paused the guest
	stoppedNotReady                     // a port did not answer within ReadyTimeout
)

// kvmFailure is what QEMU prints when KVM cannot go on with the guest; it
// then pauses the guest instead of exiting.
const kvmFailure = "KVM internal error"

// outcome is what happened to one QEMU process.
type outcome struct {
	stop    stopReason
	cause   error  // why c2vm stopped the guest
	hard    string // why a graceful stop ended in a hard one, if it did
	hint    string // what may explain that
	waitErr error  // QEMU's exit status
	stderr  string
	found   bool // Expect appeared
	code    int  // the exit code the guest reported, or -1
	quit    bool // the console ends with QEMU's words for Ctrl-a x
}

// boot starts QEMU and waits for it to exit, stopping it when the run's
// limits say so.
func (p *plan) boot(ctx context.Context) (*outcome, error) {
	con := newConsole(p.consoleOut(), p.o.Expect)
	stderr := &tailBuffer{max: 16 << 10, watch: kvmFailure, hit: make(chan struct{})}
	cmd := exec.Command(p.qemu, p.args...)
	cmd.Stderr = stderr
	// QEMU gets a session of its own, so that no signal meant for the
	// terminal reaches it: on a hangup, c2vm presses the power button
	// first. It dies with c2vm rather than outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = quitGrace
	tty, err := attachConsole(cmd, p.o.Stdin, con)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		tty.close()
		return nil, fmt.Errorf("starting QEMU: %v", err)
	}
	tty.started()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	rctx, stopReadiness := context.WithCancel(ctx)
	p.running(rctx, cmd.Process.Pid)
	res := &outcome{}
	res.waitErr = p.supervise(ctx, cmd.Process, con, stderr.hit, exited, res)
	stopReadiness()
	tty.wait()
	con.close()
	found, code, endsLine := con.result()
	if !endsLine {
		// End the console's last line, so c2vm's own message starts a line.
		fmt.Fprintln(p.consoleOut())
	}
	res.found, res.code, res.quit, res.stderr = found, code, con.quitByUser(), stderr.String()
	if res.stop != notStopped || res.waitErr == nil {
		// QEMU's warnings; on failure they go into the error instead.
		if s := withoutOurSignal(res.stderr); s != "" {
			p.say(strings.TrimSuffix(s, "\n"))
		}
	}
	return res, nil
}

// consoleOut is where the guest's console goes: the caller's Stdout and
// the VM's log; in the background, the log alone.
func (p *plan) consoleOut() io.Writer {
	switch {
	case p.log == nil:
		return p.o.Stdout
	case p.o.background:
		return p.log
	}
	return tee{p.o.Stdout, p.log}
}

// tee writes to both, whatever either does: a terminal gone must not cost
// the log its lines.
type tee [2]io.Writer

func (t tee) Write(b []byte) (int, error) {
	t[0].Write(b)
	t[1].Write(b)
	return len(b), nil
}

// supervise waits for QEMU to exit or for a reason to stop it, and returns
// QEMU's exit status.
func (p *plan) supervise(ctx context.Context, proc *os.Process, con *console, kvmFailed <-chan struct{}, exited <-chan error, res *outcome) error {
	var timeout <-chan time.Time
	if p.o.Timeout > 0 {
		t := time.NewTimer(p.o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var found <-chan struct{}
	if p.o.QuitOnExpect {
		found = con.foundCh
	}
	stopGrace := grace{p.o.StopTimeout, "--stop-timeout", "--stop-timeout 0"}
	select {
	case err := <-exited:
		return err
	case <-found:
		res.stop = stoppedOnExpect
	case <-kvmFailed:
		res.stop = stoppedOnKVMError
	case <-timeout:
		// A guest that overran its time is taken to be stuck, and a stuck
		// guest would not answer the power button: stop it at once.
		res.stop = stoppedOnTimeout
	case err := <-p.notReady:
		res.stop, res.cause = stoppedNotReady, err
		return p.gracefulStop(proc, exited, res, stopGrace)
	case <-ctx.Done():
		res.stop, res.cause = stoppedOnSignal, context.Cause(ctx)
		return p.gracefulStop(proc, exited, res, stopGrace)
	case r := <-p.stopReqs:
		res.stop, res.cause = stoppedOnSignal, errors.New(r.By)
		return p.gracefulStop(proc, exited, res, grace{r.Timeout, r.Flag, r.AtOnce})
	}
	return hardStop(proc, exited)
}

// withoutOurSignal drops QEMU's note that c2vm's SIGTERM ended it.
func withoutOurSignal(s string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && !strings.Contains(l, "terminating on signal") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// tailBuffer keeps the last max bytes written to it: QEMU's stderr, for
// the error message when it fails. hit is closed once watch appears.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	b     []byte
	watch string
	hit   chan struct{}
	seen  bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if !t.seen && t.watch != "" && strings.Contains(string(t.b), t.watch) {
		t.seen = true
		close(t.hit)
	}
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
