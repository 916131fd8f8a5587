package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/c2vm/c2vm/internal/usererr"
)

// A detached VM is run by a c2vm process of its own, the supervisor: the
// same Run, in a session of its own, with the console going to the VM's
// log. It gets its Options as JSON on its standard input and reports on
// file descriptor 3 until the VM runs: c2vm's notes, then that the VM is
// ready (its ports answer), or how the run ended before that.

// statusMsg is one report of the supervisor.
type statusMsg struct {
	Note  string  `json:"note,omitempty"`
	Ready string  `json:"ready,omitempty"` // the VM's name: it runs
	Ended *Ending `json:"ended,omitempty"` // it ended before it was ready
}

// maxOptions bounds the Options a supervisor reads.
const maxOptions = 1 << 20

// Detach starts o's VM in the background through supervisor (a command
// that calls Supervise) and returns once it runs and the ports o waits for
// answer. Cancelling ctx before then presses the VM's power button.
func Detach(ctx context.Context, o Options, supervisor []string) error {
	o = withDefaults(o)
	if err := checkOptions(o); err != nil {
		return err
	}
	opts, err := json.Marshal(o)
	if err != nil {
		return err
	}
	name := o.Name
	if abs, err := filepath.Abs(o.Disk); err == nil && name == "" {
		name = derivedName(abs)
	}
	in, status, cmd, err := startSupervisor(supervisor)
	if err != nil {
		return err
	}
	defer status.Close()
	go func() {
		in.Write(opts)
		in.Close()
	}()
	msgs := make(chan statusMsg)
	go func() {
		defer close(msgs)
		dec := json.NewDecoder(status)
		for {
			var m statusMsg
			if dec.Decode(&m) != nil {
				return
			}
			msgs <- m
		}
	}()
	done := ctx.Done()
	for {
		select {
		case <-done:
			cmd.Process.Signal(syscall.SIGTERM)
			done = nil
		case m, ok := <-msgs:
			switch {
			case !ok:
				werr := cmd.Wait()
				return fmt.Errorf("the c2vm process that was to run the VM ended before it ran (%v)", werr)
			case m.Note != "":
				fmt.Fprintln(o.Stderr, m.Note)
			case m.Ready != "":
				// Reaped when it ends, should this process outlive it.
				go cmd.Wait()
				fmt.Fprintf(o.Stderr, "c2vm: VM %s runs in the background: c2vm logs %[1]s shows its console, c2vm ssh %[1]s logs in, c2vm stop %[1]s powers it off\n", m.Ready)
				return nil
			case m.Ended != nil:
				cmd.Wait()
				return endedEarly(*m.Ended, name)
			}
		}
	}
}

// startSupervisor starts the supervisor in a session of its own, so that
// nothing sent to this terminal's processes reaches it.
func startSupervisor(argv []string) (in io.WriteCloser, status *os.File, cmd *exec.Cmd, err error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, nil, nil, err
	}
	cmd = exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = inR
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	inR.Close()
	statusW.Close()
	if err != nil {
		inW.Close()
		statusR.Close()
		return nil, nil, nil, fmt.Errorf("starting c2vm in the background: %v", err)
	}
	return inW, statusR, cmd, nil
}

// endedEarly is the error of a detached run whose VM ended before it was
// ready.
func endedEarly(e Ending, name string) error {
	switch {
	case isExitMessage(e):
		return &ExitError{Code: e.Code}
	case e.Code == 0:
		return usererr.New("the guest powered off before it was ready", "check its console: c2vm logs "+name)
	}
	return e.err()
}

// Supervise runs the VM that Detach started: Options come on standard
// input, reports go to file descriptor 3.
func Supervise(ctx context.Context) error {
	var o Options
	if err := json.NewDecoder(io.LimitReader(os.Stdin, maxOptions)).Decode(&o); err != nil {
		return fmt.Errorf("reading the VM's options: %v", err)
	}
	r := &reporter{w: os.NewFile(3, "status")}
	o.Stdin, o.Stdout, o.Stderr = nil, io.Discard, r
	o.background, o.ready = true, r.ready
	err := Run(ctx, o)
	r.ended(endingOf(err))
	return err
}

// reporter sends the supervisor's reports until the VM is ready or ended.
type reporter struct {
	mu  sync.Mutex
	w   *os.File // nil once done
	enc *json.Encoder
}

func (r *reporter) send(m statusMsg) {
	if r.w == nil {
		return
	}
	if r.enc == nil {
		r.enc = json.NewEncoder(r.w)
	}
	r.enc.Encode(m)
}

// Write sends c2vm's lines as notes.
func (r *reporter) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.send(statusMsg{Note: string(trimNewline(b))})
	return len(b), nil
}

func (r *reporter) ready(name string) { r.last(statusMsg{Ready: name}) }

func (r *reporter) ended(e Ending) { r.last(statusMsg{Ended: &e}) }

// last sends the final report and closes the pipe, so that c2vm run
// --detach returns.
func (r *reporter) last(m statusMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return
	}
	r.send(m)
	r.w.Close()
	r.w = nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}
