package vmrun

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
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
// and returns what puts them back: the relay sets it raw for the run.
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

// consoleIO is QEMU's standard input and output: the caller's, or on a
// terminal a pseudo-terminal of QEMU's own that c2vm relays.
type consoleIO struct {
	master, slave *os.File // nil without the relay
	done          chan struct{}
}

// attachConsole connects QEMU to in and con. A terminal is not handed to
// QEMU: QEMU gets a pseudo-terminal, and c2vm sets the caller's terminal
// up as QEMU would (raw input, Ctrl-C and Ctrl-a for the guest and QEMU)
// and copies both ways. QEMU, in a session of its own, then never gets
// the terminal's signals: a closed terminal reaches c2vm alone, which
// presses the power button.
func attachConsole(cmd *exec.Cmd, in io.Reader, con io.Writer) (*consoleIO, error) {
	fd, tty := terminalFd(in)
	if !tty {
		cmd.Stdin, cmd.Stdout = in, con
		return &consoleIO{}, nil
	}
	master, slave, err := newPty()
	if err != nil {
		return nil, fmt.Errorf("making QEMU's terminal: %v", err)
	}
	if err := makeConsoleRaw(fd); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("setting up the terminal: %v", err)
	}
	cmd.Stdin, cmd.Stdout = slave, slave
	c := &consoleIO{master: master, slave: slave, done: make(chan struct{})}
	go func() {
		io.Copy(con, master) // ends with EIO once QEMU has exited
		close(c.done)
	}()
	// Blocked on the terminal until the next key after QEMU exits, when
	// the write to the closed master ends it.
	go io.Copy(master, in)
	return c, nil
}

// started drops c2vm's copy of QEMU's terminal, so that reading the
// master ends when QEMU exits.
func (c *consoleIO) started() {
	if c.slave != nil {
		c.slave.Close()
		c.slave = nil
	}
}

// wait waits for QEMU's last console output to be copied.
func (c *consoleIO) wait() {
	if c.master != nil {
		<-c.done
		c.master.Close()
	}
}

// close undoes attachConsole when QEMU did not start.
func (c *consoleIO) close() {
	c.started()
	c.wait()
}

// newPty opens a pseudo-terminal's master and its terminal.
func newPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// makeConsoleRaw sets a terminal as QEMU sets its own for -serial
// mon:stdio: bytes pass as typed (Ctrl-C goes to the guest, not as a
// signal), without echo; output still turns "\n" into "\r\n", so c2vm's
// lines during the run start at the margin.
func makeConsoleRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag |= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.IEXTEN | unix.ISIG
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
