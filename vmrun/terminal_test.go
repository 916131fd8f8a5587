package vmrun

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// openPty returns the terminal end of a new pseudo-terminal.
func openPty(t *testing.T) *os.File {
	t.Helper()
	_, s := openPtyPair(t)
	return s
}

// openPtyPair returns a new pseudo-terminal's master and terminal.
func openPtyPair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

func TestSaveTerminal(t *testing.T) {
	pty := openPty(t)
	before := termios(t, pty)
	restore := saveTerminal(pty)
	if _, err := term.MakeRaw(int(pty.Fd())); err != nil {
		t.Fatal(err)
	}
	if termios(t, pty) == before {
		t.Fatal("raw mode changed nothing")
	}
	restore()
	if termios(t, pty) != before {
		t.Error("not restored")
	}
	// Not a terminal: nothing to do, and nothing fails.
	saveTerminal(strings.NewReader(""))()
	saveTerminal(nil)()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	saveTerminal(r)()
}

// TestRunRestoresTerminal: QEMU (here its stand-in) sets the terminal raw
// and is stopped on timeout, never undoing that; Run does.
func TestRunRestoresTerminal(t *testing.T) {
	pty := openPty(t)
	before := termios(t, pty)
	o := fakeRun(t, "hang", "", "")
	o.Stdin, o.Timeout = pty, time.Second
	var out buffer
	o.Stdout = &out
	rawSeen := make(chan bool, 1)
	go func() {
		out.waitFor(t, "RAW")
		rawSeen <- termios(t, pty).Lflag&unix.ICANON == 0
	}()
	err := Run(context.Background(), o)
	if err == nil {
		t.Fatal("a timeout without --expect succeeded")
	}
	if !<-rawSeen {
		t.Fatal("the stand-in did not make the terminal raw: the test proves nothing")
	}
	if termios(t, pty) != before {
		t.Error("terminal left raw after the run")
	}
}

// On a terminal, QEMU gets a terminal of its own in a session of its own,
// and what the user types reaches it.
func TestRelay(t *testing.T) {
	m, pty := openPtyPair(t)
	before := termios(t, pty)
	o := fakeRun(t, "echo", "", "")
	o.Stdin = pty
	var out buffer
	o.Stdout = &out
	go func() {
		out.waitFor(t, "READY")
		m.Write([]byte("hi"))
		out.waitFor(t, "GOT hi")
		m.Write([]byte("q"))
	}()
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	name, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pty.Fd()))
	if !strings.Contains(out.String(), "TTY /dev/pts/") || strings.Contains(out.String(), "TTY "+name+" ") || !strings.Contains(out.String(), "OWN-SESSION") {
		t.Errorf("QEMU's terminal (the caller's is %s):\n%s", name, out.String())
	}
	if termios(t, pty) != before {
		t.Error("terminal left raw after the run")
	}
}
