package appinit

import (
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit codes of init failures, as docker run reports them.
const (
	CodeInitError  = 125 // c2vm's own failure: config, mounts, user…
	CodeCannotExec = 126 // the program exists but cannot be executed
	CodeNotFound   = 127 // the program does not exist
)

// ExitError is a failure before the program ran, with its exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

func initError(format string, a ...any) error {
	return &ExitError{Code: CodeInitError, Err: fmt.Errorf(format, a...)}
}

// Program is a resolved Config: what to execute, how and as whom.
type Program struct {
	Path string // the executable, inside the image
	Argv []string
	Env  []string
	Dir  string
	ID   Identity
}

// Prepare resolves c against the image whose "/" is root on this side,
// creating a missing working directory as Docker does (owned by root, mode
// 0755). Failures are ExitErrors with Docker's codes.
func Prepare(root string, c *Config, hostname, term string) (*Program, error) {
	argv := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(argv) == 0 {
		return nil, initError("no command: the image has neither ENTRYPOINT nor CMD")
	}
	passwd, err := readIDFile(inRoot(root, "/etc/passwd"))
	if err != nil {
		return nil, initError("/etc/passwd: %v", err)
	}
	group, err := readIDFile(inRoot(root, "/etc/group"))
	if err != nil {
		return nil, initError("/etc/group: %v", err)
	}
	id, err := ResolveUser(c.User, passwd, group)
	if err != nil {
		return nil, initError("user %q: %v", c.User, err)
	}
	p := &Program{Argv: argv, ID: id, Dir: c.WorkingDir, Env: BuildEnv(c.Env, hostname, term, id.Home)}
	if p.Dir == "" {
		p.Dir = "/"
	}
	if err := os.MkdirAll(inRoot(root, p.Dir), 0o755); err != nil {
		return nil, initError("working directory: %v", err)
	}
	p.Path, err = LookPath(root, argv[0], getenv(p.Env, "PATH"), p.Dir)
	if err != nil {
		return nil, &ExitError{Code: CodeNotFound, Err: fmt.Errorf("exec: %q: %w", argv[0], err)}
	}
	return p, nil
}

// Start runs the program with stdio on the console. With ctty the program
// leads the console's foreground process group, so ^C and job control work
// as under docker run -it; the caller must hold the console as its session's
// controlling terminal first (HoldConsole). Without ctty the program leads a
// session of its own.
func (p *Program) Start(stdio *os.File, ctty bool) (int, error) {
	fd := stdio.Fd()
	groups := make([]uint32, len(p.ID.Groups))
	copy(groups, p.ID.Groups)
	sys := &syscall.SysProcAttr{
		// Only root may set groups; PID 1 always is, tests may not be.
		Credential: &syscall.Credential{Uid: p.ID.UID, Gid: p.ID.GID, Groups: groups, NoSetGroups: os.Getuid() != 0},
	}
	if ctty {
		sys.Foreground, sys.Ctty = true, int(fd) // Foreground implies Setpgid
	} else {
		sys.Setsid = true
	}
	attr := &syscall.ProcAttr{Dir: p.Dir, Env: p.Env, Files: []uintptr{fd, fd, fd}, Sys: sys}
	pid, err := syscall.ForkExec(p.Path, p.Argv, attr)
	if err != nil {
		return 0, p.execError(err)
	}
	return pid, nil
}

// HoldConsole makes console the controlling terminal of a session led by
// the caller, PID 1, which never exits. The program must not lead that
// session: when a session leader exits, the kernel hangs its terminal up,
// and a serial line's hangup discards the output still queued for the UART,
// the program's last lines.
func HoldConsole(console *os.File) error {
	if _, err := unix.Setsid(); err != nil && unix.Getpid() != sessionID() {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(console.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY on the console: %w", err)
	}
	return nil
}

func sessionID() int {
	sid, _ := unix.Getsid(0)
	return sid
}

// execError maps an exec failure to Docker's codes: a missing file is 127,
// anything else 126. ENOENT for a file that exists means its interpreter
// (#! line or dynamic loader) is missing, the usual surprise of a binary
// copied into a scratch image.
func (p *Program) execError(err error) error {
	if errors.Is(err, syscall.ENOENT) {
		msg := fmt.Errorf("exec %s: %w", p.Path, err)
		file := p.Path
		if !path.IsAbs(file) {
			file = path.Join(p.Dir, file)
		}
		if fi, serr := os.Stat(file); serr == nil && fi.Mode().IsRegular() {
			msg = fmt.Errorf("exec %s: %w (the file exists: its interpreter or dynamic loader is missing from the image)", p.Path, err)
		}
		return &ExitError{Code: CodeNotFound, Err: msg}
	}
	return &ExitError{Code: CodeCannotExec, Err: fmt.Errorf("exec %s as %d:%d in %s: %w", p.Path, p.ID.UID, p.ID.GID, p.Dir, err)}
}
