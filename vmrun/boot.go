package vmrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// How long QEMU gets to exit after SIGTERM before SIGKILL, and how often
// the power button is pressed again while the guest has not reacted.
var (
	quitGrace         = 5 * time.Second
	powerButtonRepeat = 5 * time.Second
)

type stopReason int

const (
	notStopped        stopReason = iota // QEMU exited by itself: the guest powered off, or Ctrl-a x
	stoppedOnTimeout                    // Options.Timeout passed
	stoppedOnExpect                     // QuitOnExpect and the text appeared
	stoppedOnSignal                     // ctx was cancelled
	stoppedOnKVMError                   // KVM failed and QEMU paused the guest
)

// kvmFailure is what QEMU prints when KVM cannot go on with the guest; it
// then pauses the guest instead of exiting.
const kvmFailure = "KVM internal error"

// outcome is what happened to one QEMU process.
type outcome struct {
	stop    stopReason
	cause   error  // why ctx ended
	hard    string // why a graceful stop ended in a hard one, if it did
	waitErr error  // QEMU's exit status
	stderr  string
	found   bool // Expect appeared
	code    int  // the exit code the guest reported, or -1
}

// boot starts QEMU and waits for it to exit, stopping it when the run's
// limits say so.
func (p *plan) boot(ctx context.Context) (*outcome, error) {
	con := newConsole(p.o.Stdout, p.o.Expect)
	stderr := &tailBuffer{max: 16 << 10, watch: kvmFailure, hit: make(chan struct{})}
	cmd := exec.Command(p.qemu, p.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.o.Stdin, con, stderr
	// QEMU must share a terminal's foreground process group to use it as
	// the console. Without a terminal it gets its own group, so that a
	// Ctrl-C meant for c2vm does not kill it before the power button is
	// pressed. Either way it dies with c2vm rather than outlive it.
	_, tty := terminalFd(p.o.Stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !tty, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = quitGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting QEMU: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	res := &outcome{}
	res.waitErr = p.supervise(ctx, cmd.Process, con, stderr.hit, exited, res)
	con.close()
	found, code, endsLine := con.result()
	if !endsLine {
		// End the console's last line, so c2vm's own message starts a line.
		fmt.Fprintln(p.o.Stdout)
	}
	res.found, res.code, res.stderr = found, code, stderr.String()
	if res.stop != notStopped || res.waitErr == nil {
		// QEMU's warnings; on failure they go into the error instead.
		fmt.Fprint(p.o.Stderr, withoutOurSignal(res.stderr))
	}
	return res, nil
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
	case <-ctx.Done():
		res.stop, res.cause = stoppedOnSignal, context.Cause(ctx)
		return p.gracefulStop(proc, exited, res)
	}
	return hardStop(proc, exited)
}

// gracefulStop presses the power button and gives the guest StopTimeout to
// power off; a second SIGINT or SIGTERM, or a broken QMP connection, cuts
// that short.
func (p *plan) gracefulStop(proc *os.Process, exited <-chan error, res *outcome) error {
	if p.o.StopTimeout < 0 {
		res.hard = "--stop-timeout is negative"
		return hardStop(proc, exited)
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	fmt.Fprintf(p.o.Stderr, "\nc2vm: %v: pressing the guest's power button; waiting up to %s for it to power off (signal again to stop at once)\n",
		res.cause, p.o.StopTimeout)
	stop, errc, pressed := make(chan struct{}), make(chan error, 1), make(chan struct{})
	go func() {
		pressPowerButton(p.qmp, powerButtonRepeat, stop, errc)
		close(pressed)
	}()
	defer func() {
		close(stop)
		<-pressed
	}()
	grace := time.NewTimer(p.o.StopTimeout)
	defer grace.Stop()
	select {
	case err := <-exited:
		return err
	case <-grace.C:
		res.hard = fmt.Sprintf("the guest did not power off within --stop-timeout %s", p.o.StopTimeout)
	case s := <-again:
		res.hard = fmt.Sprintf("a second %v arrived", s)
	case err := <-errc:
		// QEMU closes the monitor as it exits: give that a moment to show.
		select {
		case werr := <-exited:
			return werr
		case <-time.After(2 * time.Second):
		}
		res.hard = fmt.Sprintf("the power button could not be pressed (%v)", err)
	}
	return hardStop(proc, exited)
}

// pressPowerButton sends system_powerdown over c2vm's QMP socket, and again
// every repeat until stop: a press during the firmware or early boot,
// before anything in the guest listens for it, is lost. It returns soon
// after stop is closed.
func pressPowerButton(sock string, repeat time.Duration, stop <-chan struct{}, errc chan<- error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	go func() {
		<-stop
		cancel()
	}()
	q, err := dialQMP(dctx, sock)
	dcancel()
	if err != nil {
		errc <- err
		return
	}
	go func() {
		<-ctx.Done()
		q.Close() // ends a pending read
	}()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := q.execute(cctx, "system_powerdown", nil)
		ccancel()
		if err != nil {
			errc <- err
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(repeat):
		}
	}
}

// hardStop ends QEMU without the guest: on SIGTERM QEMU flushes its disk
// caches and exits, as its quit command does; SIGKILL follows if it hangs.
func hardStop(proc *os.Process, exited <-chan error) error {
	proc.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(quitGrace):
	}
	proc.Kill()
	return <-exited
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
