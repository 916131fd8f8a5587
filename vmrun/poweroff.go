package vmrun

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Stopping a guest: its ACPI power button over QMP, a grace period, and a
// hard stop of QEMU when the guest does not power off in time.

// How long QEMU gets to exit after SIGTERM before SIGKILL, and how often
// the power button is pressed again while the guest has not reacted.
var (
	quitGrace         = 5 * time.Second
	powerButtonRepeat = 5 * time.Second
)

// grace is how long the guest gets after its power button, and what set
// that, for messages.
type grace struct {
	d      time.Duration // negative: none, QEMU is stopped at once
	flag   string        // what set d: "--stop-timeout"
	atOnce string        // what asked for no grace: "--stop-timeout 0"
}

// gracefulStop presses the power button and gives the guest its grace
// period to power off; another SIGINT or SIGTERM, a request to stop at
// once, or a broken QMP connection cuts that short. A SIGHUP does not: a
// closed terminal may send it twice (the kernel, then the shell).
func (p *plan) gracefulStop(proc *os.Process, exited <-chan error, res *outcome, g grace) error {
	if g.d < 0 {
		res.hard = fmt.Sprintf("QEMU was stopped at once (%s)", g.atOnce)
		return hardStop(proc, exited)
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	p.say(fmt.Sprintf("\nc2vm: %v: pressing the guest's power button; waiting up to %s for it to power off (signal again to stop at once)", res.cause, g.d))
	ran := time.Since(p.started).Round(time.Second)
	stop, errc, pressed := make(chan struct{}), make(chan error, 1), make(chan struct{})
	go func() {
		pressPowerButton(p.mon, powerButtonRepeat, stop, errc)
		close(pressed)
	}()
	defer func() {
		close(stop)
		<-pressed
	}()
	timer := time.NewTimer(g.d)
	defer timer.Stop()
	for {
		select {
		case err := <-exited:
			return err
		case <-timer.C:
			res.hard = fmt.Sprintf("the guest did not power off within %s of its power button (%s)", g.d, g.flag)
			res.hint = fmt.Sprintf("It had run for %s: a guest still booting, or one without systemd-logind or acpid, does not react to the button.", ran)
		case s := <-again:
			res.hard = fmt.Sprintf("a second %v arrived", s)
		case r := <-p.stopReqs:
			if r.Timeout >= 0 {
				continue // already stopping; its answer comes with the end
			}
			res.hard = fmt.Sprintf("QEMU was stopped at once (%s)", r.AtOnce)
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
}

// pressPowerButton sends system_powerdown over c2vm's QMP connection, and
// again every repeat until stop: a press during the firmware or early
// boot, before anything in the guest listens for it, is lost. It returns
// soon after stop is closed.
func pressPowerButton(m *monitor, repeat time.Duration, stop <-chan struct{}, errc chan<- error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	// The first press may wait for QEMU to open its socket.
	limit := 10 * time.Second
	for {
		cctx, ccancel := context.WithTimeout(ctx, limit)
		_, err := m.execute(cctx, "system_powerdown", nil)
		ccancel()
		if err != nil {
			if ctx.Err() == nil {
				errc <- err
			}
			return
		}
		limit = 5 * time.Second
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
