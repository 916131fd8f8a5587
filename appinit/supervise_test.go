package appinit

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// supervise runs script under a Supervisor the way PID 1 does, with this
// test process as a subreaper (so orphans come to it, as to PID 1) and
// KillAll confined to the script's session. It returns the exit code; run
// calls back while the program runs.
func supervise(t *testing.T, script string, stop syscall.Signal, during func(s *Supervisor, sigs chan os.Signal, power chan struct{})) int {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skip("no subreaper:", err)
	}
	null, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer null.Close()
	p := &Program{Path: "/bin/sh", Argv: []string{"sh", "-c", script}, Dir: "/", Env: []string{"PATH=" + DefaultPath},
		ID: Identity{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}}
	pid, err := p.Start(null, false)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	power := make(chan struct{}, 1)
	s := &Supervisor{Main: pid, Signals: sigs, PowerButton: power, StopSignal: stop, StopTimeout: 300 * time.Millisecond,
		Grace: 300 * time.Millisecond, KillAll: func(sig syscall.Signal) { unix.Kill(-pid, sig) }, Logf: t.Logf}
	if during != nil {
		go during(s, sigs, power)
	}
	code := s.Run()
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("children left after Run: %v", err)
	}
	return code
}

// zombies lists this process's children in state Z.
func zombies() []string {
	var z []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(os.Getpid()) {
			z = append(z, st)
		}
	}
	return z
}

func TestSupervisorExitCodeAndOrphans(t *testing.T) {
	seen := make(chan []string, 1)
	// The inner shell exits at once: its sleep is orphaned, reparented to
	// the subreaper, and exits while the program still runs.
	code := supervise(t, `sh -c "sleep 0.1 &"; sleep 0.6; exit 3`, syscall.SIGTERM, func(*Supervisor, chan os.Signal, chan struct{}) {
		time.Sleep(400 * time.Millisecond)
		seen <- zombies()
	})
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if z := <-seen; len(z) > 0 {
		t.Errorf("zombies while the program ran: %v", z)
	}
}

func TestSupervisorLeftoversKilled(t *testing.T) {
	start := time.Now()
	code := supervise(t, `sleep 30 & exit 0`, syscall.SIGTERM, nil)
	if code != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("exit code %d after %s", code, time.Since(start))
	}
}

func TestSupervisorStop(t *testing.T) {
	loop := `while :; do sleep 0.05; done`
	cases := []struct {
		name   string
		script string
		stop   syscall.Signal
		send   func(sigs chan os.Signal, power chan struct{})
		want   int
	}{
		{"SIGTERM to PID 1", `trap "exit 7" TERM; ` + loop, syscall.SIGTERM, func(s chan os.Signal, _ chan struct{}) { s <- syscall.SIGTERM }, 7},
		{"power button, STOPSIGNAL", `trap "exit 5" USR2; ` + loop, syscall.SIGUSR2, func(_ chan os.Signal, p chan struct{}) { p <- struct{}{} }, 5},
		{"forwarded signal", `trap "exit 9" USR1; ` + loop, syscall.SIGTERM, func(s chan os.Signal, _ chan struct{}) { s <- syscall.SIGUSR1 }, 9},
		{"stop ignored: SIGKILL", `trap "" TERM; ` + loop, syscall.SIGTERM, func(s chan os.Signal, _ chan struct{}) { s <- syscall.SIGTERM }, 128 + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := supervise(t, c.script, c.stop, func(_ *Supervisor, sigs chan os.Signal, power chan struct{}) {
				time.Sleep(150 * time.Millisecond) // the trap is set
				c.send(sigs, power)
			})
			if code != c.want {
				t.Errorf("exit code %d, want %d", code, c.want)
			}
		})
	}
}
