package appinit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timeouts of the stop path, as docker stop's default and a short grace for
// what the program leaves behind.
const (
	StopTimeout = 10 * time.Second
	LeftGrace   = 2 * time.Second
)

// forwarded are the signals PID 1 passes to the program (SIGTERM stops it
// instead). They must be caught first thing: the Go runtime exits on an
// uncaught SIGHUP, SIGINT, SIGQUIT or SIGABRT, and a PID 1 that exits
// panics the kernel. SIGURG is the runtime's own preemption signal.
var forwarded = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGWINCH, syscall.SIGPWR}

// IsGuestInit reports whether this process is app mode's init: PID 1 with
// c2vm's initramfs (or an app-mode root) around it. PID 1 alone is not
// enough: c2vm is also PID 1 of containers, as BuildKit's frontend or in
// docker run, and must stay the CLI there.
func IsGuestInit() bool {
	if os.Getpid() != 1 {
		return false
	}
	for _, p := range []string{ModuleListPath, ConfigPath} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Main is PID 1. It never returns: every path ends in shutdown.
func Main() {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append(forwarded, syscall.SIGTERM, syscall.SIGCHLD)...)
	// Ctrl-Alt-Del becomes SIGINT to PID 1 (forwarded) rather than an
	// instant reset that would leave the disk unsynced.
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	go seedEntropy()
	g := &guest{}
	g.shutdown(g.run(sigs))
}

// guest is the state shutdown needs.
type guest struct {
	rootIsImage bool // / is the image's root filesystem, to remount read-only
}

func (g *guest) logf(format string, a ...any) {
	fmt.Fprintf(os.Stdout, "c2vm: "+format+"\n", a...)
}

// fail prints why the init failed and returns the exit code to report.
func (g *guest) fail(err error) int {
	g.logf("%v", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return CodeInitError
}

// run boots the image and the program and returns the exit code.
func (g *guest) run(sigs <-chan os.Signal) (code int) {
	defer func() {
		if r := recover(); r != nil {
			code = g.fail(fmt.Errorf("init panic: %v\n%s", r, debug.Stack()))
		}
	}()
	if inInitramfs() {
		if err := stage1(g.logf); err != nil {
			return g.fail(err)
		}
	}
	g.rootIsImage = true
	if err := stage2Mounts(); err != nil {
		return g.fail(err)
	}
	power := make(chan struct{}, 1)
	go safely(g.logf, func() { watchPowerButton(power, g.logf) })
	prog, cfg, err := g.prepare()
	if err != nil {
		return g.fail(err)
	}
	nc, err := setupNetwork(context.Background(), cfg.Hostname, g.logf)
	if err != nil {
		g.logf("network: %v (the program runs without one)", err)
	}
	installEtcFiles(cfg.Hostname, nc, g.logf)
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return g.fail(initError("open /dev/console: %v", err))
	}
	ctty := true
	if err := HoldConsole(console); err != nil {
		g.logf("console: %v (the program runs without a controlling terminal)", err)
		ctty = false
	}
	pid, err := prog.Start(console, ctty)
	console.Close()
	if err != nil {
		return g.fail(err)
	}
	stopSig, _ := ParseSignal(cfg.StopSignal) // validated
	if cfg.StopSignal == "" {
		stopSig = syscall.SIGTERM
	}
	s := &Supervisor{Main: pid, Signals: sigs, PowerButton: power, StopSignal: stopSig,
		StopTimeout: StopTimeout, Grace: LeftGrace, KillAll: killAll, Logf: g.logf}
	return s.Run()
}

// prepare loads the config, sets hostname and clock and resolves the
// program.
func (g *guest) prepare() (*Program, *Config, error) {
	cfg, err := LoadConfig(ConfigPath)
	if err != nil {
		return nil, nil, initError("config %s: %v", ConfigPath, err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = DefaultHostname
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return nil, nil, initError("hostname: %v", err)
	}
	setClock(g.logf)
	active, _ := os.ReadFile("/sys/class/tty/console/active")
	prog, err := Prepare("/", cfg, cfg.Hostname, consoleTerm(string(active)))
	return prog, cfg, err
}

func killAll(sig syscall.Signal) { unix.Kill(-1, sig) }

// shutdown ends the VM: nothing left running, the disk synced and clean,
// the exit code on the console, power off.
func (g *guest) shutdown(code int) {
	defer func() {
		if r := recover(); r != nil {
			g.logf("shutdown panic: %v", r)
			unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		}
		for {
			time.Sleep(time.Hour) // PID 1 must never exit
		}
	}()
	(&Supervisor{Main: -1, KillAll: killAll, Grace: LeftGrace, Logf: g.logf}).killLeftovers()
	unix.Sync()
	if g.rootIsImage {
		if err := remountReadOnly("/"); err != nil {
			g.logf("remount / read-only: %v (the disk may need a journal replay)", err)
		}
	}
	fmt.Fprintf(os.Stdout, "c2vm: exit code=%d\n", code)
	drainConsole(int(os.Stdout.Fd()))
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// drainConsole waits until the console's last byte has left the UART, at
// most consoleDrain. tcdrain alone is not enough: the serial driver waits
// for the transmitter at most twice the FIFO's time at line speed, and an
// emulated UART whose host reads slowly (QEMU's serial port on a busy
// host's pipe) holds bytes longer. The kernel's "reboot: Power down" would
// then go into a full FIFO, which drops bytes of the exit code line. The
// line status register says when the transmitter is empty.
func drainConsole(fd int) {
	unix.IoctlSetInt(fd, unix.TCSBRK, 1) // tcdrain
	for end := time.Now().Add(consoleDrain); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		lsr, err := unix.IoctlGetInt(fd, unix.TIOCSERGETLSR)
		if err != nil || lsr&unix.TIOCSER_TEMT != 0 {
			return
		}
	}
}

// consoleDrain bounds drainConsole: a console nobody reads must not keep
// the VM from powering off.
const consoleDrain = 3 * time.Second

// remountReadOnly retries while the last writers' files are being closed.
func remountReadOnly(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != unix.EBUSY {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// safely runs a goroutine's body so that a panic is reported instead of
// killing PID 1.
func safely(logf func(string, ...any), fn func()) {
	defer func() {
		if r := recover(); r != nil {
			logf("panic: %v\n%s", r, strings.TrimSpace(string(debug.Stack())))
		}
	}()
	fn()
}
