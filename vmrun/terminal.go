package vmrun

import (
	"io"
	"os"

	"golang.org/x/term"
)

// terminalFd returns the descriptor of in when it is a terminal.
func terminalFd(in io.Reader) (int, bool) {
	f, ok := in.(*os.File)
	if !ok || f == nil {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// saveTerminal records the settings of the terminal on in, if it is one,
// and returns what puts them back. QEMU's -serial mon:stdio switches the
// terminal to raw mode and restores it only when it exits by itself: after
// a kill, or a stop on timeout, the shell would be left without echo.
func saveTerminal(in io.Reader) (restore func()) {
	fd, ok := terminalFd(in)
	if !ok {
		return func() {}
	}
	st, err := term.GetState(fd)
	if err != nil {
		return func() {}
	}
	return func() { term.Restore(fd, st) }
}
