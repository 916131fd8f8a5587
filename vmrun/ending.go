package vmrun

import (
	"errors"
	"fmt"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// HardStopCode is the exit status of a run whose guest was powered off
// hard: QEMU quit with Ctrl-a x, stopped after the guest's grace period,
// or killed. It is what a killed container gives (128+SIGKILL).
const HardStopCode = 137

// PoweredOffHard is the error of a run whose guest did not power off
// itself: a power cut for it, whose last writes may be lost. A command
// prints it and exits with HardStopCode.
type PoweredOffHard struct{ Err *usererr.Error }

func (e *PoweredOffHard) Error() string { return e.Err.Error() }
func (e *PoweredOffHard) Unwrap() error { return e.Err }

func poweredOffHard(msg, fix string) error {
	return &PoweredOffHard{Err: usererr.New(msg, fix)}
}

// Ending is how a run of a VM ended, as its state file keeps it and as c2vm
// stop reports it.
type Ending struct {
	Code    int       `json:"code"` // the run's exit status
	Hard    bool      `json:"hard,omitempty"`
	Message string    `json:"message,omitempty"` // why, unless the guest powered off cleanly
	Fix     string    `json:"fix,omitempty"`
	At      time.Time `json:"at"`
}

// endingOf turns Run's result into an Ending.
func endingOf(err error) Ending {
	e := Ending{At: time.Now().UTC()}
	var exit *ExitError
	var hard *PoweredOffHard
	var ue *usererr.Error
	switch {
	case err == nil:
	case errors.As(err, &hard):
		e.Code, e.Hard, e.Message, e.Fix = HardStopCode, true, hard.Err.Msg, hard.Err.Fix
	case errors.As(err, &exit):
		e.Code, e.Message = exit.Code, exit.Error()
	case errors.As(err, &ue):
		e.Code, e.Message, e.Fix = 1, ue.Msg, ue.Fix
	default:
		e.Code, e.Message = 1, err.Error()
	}
	return e
}

// err is the Ending as the error of a command that waited for it: nil for
// a clean power-off, whatever the program's exit code.
func (e Ending) err() error {
	switch {
	case e.Hard:
		return poweredOffHard(e.Message, e.Fix)
	case e.Code == 0 || isExitMessage(e):
		return nil
	}
	return usererr.New(e.Message, e.Fix)
}

// isExitMessage tells an app program's exit code, which is how a clean
// power-off of an app guest reads.
func isExitMessage(e Ending) bool { return e.Message == (&ExitError{Code: e.Code}).Error() }

// summary is one line for c2vm ls and c2vm stop.
func (e Ending) summary() string {
	switch {
	case e.Code == 0:
		return "powered off"
	case e.Hard:
		return fmt.Sprintf("powered off hard (%d)", e.Code)
	case isExitMessage(e):
		return fmt.Sprintf("powered off; program exited %d", e.Code)
	}
	return fmt.Sprintf("failed (%d)", e.Code)
}
