package vmrun

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// The test binary doubles as a stand-in for qemu-system-x86_64, so that
// Run's life cycle (stops, exit codes, the terminal) is tested in
// milliseconds instead of a boot. FAKE_QEMU picks its behaviour:
//
//	console  print FAKE_CONSOLE in small pieces and "power off" (exit 0)
//	hang     make a terminal stdin raw, print, and run until killed
//	acpi     serve QMP and the forwards; on system_powerdown print
//	         FAKE_CONSOLE and exit 0
//	deaf     serve QMP, count presses, ignore them and SIGTERM
//	stubborn serve QMP, count presses and ignore them
//	fail     print an error on stderr and exit 1
//	kvmfail  print KVM's internal error on stderr and pause forever
//	quit     print FAKE_CONSOLE and what Ctrl-a x prints, and exit 0
//	echo     say which terminal it has, echo what it reads until a "q"
//	killed   print what SIGTERM from another process makes QEMU print,
//	         and exit 0
//
// It writes its arguments to FAKE_ARGS when that is set, and answers
// -version with FAKE_VERSION. Started with the argument supervise, the
// test binary is instead the supervisor of a detached VM, whose QEMU is the
// stand-in.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == "supervise" {
		qemuBinary, _ = filepath.Abs(os.Args[0])
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Supervise(ctx)
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if mode := os.Getenv("FAKE_QEMU"); mode != "" {
		fakeQEMU(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeQEMU(mode string) {
	if len(os.Args) == 2 && os.Args[1] == "-version" {
		// c2vm reads the version to choose TCG's threads: FAKE_VERSION.
		fmt.Println(os.Getenv("FAKE_VERSION"))
		os.Exit(0)
	}
	if p := os.Getenv("FAKE_ARGS"); p != "" {
		b, _ := json.Marshal(os.Args[1:])
		os.WriteFile(p, b, 0o644)
	}
	text := os.Getenv("FAKE_CONSOLE")
	switch mode {
	case "console":
		// Pieces of 7 bytes: markers arrive split across reads.
		for i := 0; i < len(text); i += 7 {
			os.Stdout.WriteString(text[i:min(i+7, len(text))])
			time.Sleep(time.Millisecond)
		}
		os.Exit(0)
	case "hang":
		if term.IsTerminal(0) {
			term.MakeRaw(0)
			fmt.Println("RAW")
		}
		fmt.Println("Booting from Hard Disk...")
		sleepForever()
	case "acpi", "deaf", "stubborn":
		if mode == "deaf" {
			signal.Ignore(syscall.SIGTERM)
		}
		serveQMP(qmpPathFromArgs(os.Args[1:]), mode == "acpi", text)
	case "kvmfail":
		fmt.Fprintln(os.Stderr, "KVM internal error. Suberror: 1\nemulation failure")
		sleepForever()
	case "fail":
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: -netdev user,id=net0,hostfwd=tcp:127.0.0.1:8000-:80: Could not set up host forwarding rule 'tcp:127.0.0.1:8000-:80'")
		os.Exit(1)
	case "echo":
		tty, _ := os.Readlink("/proc/self/fd/0")
		own := ""
		if sid, _ := unix.Getsid(0); sid == os.Getpid() {
			own = "OWN-SESSION"
		}
		fmt.Printf("TTY %s %s\nREADY\n", tty, own)
		term.MakeRaw(0)
		b := make([]byte, 64)
		for {
			n, err := os.Stdin.Read(b)
			if err != nil || strings.Contains(string(b[:n]), "q") {
				os.Exit(0)
			}
			fmt.Printf("GOT %s\n", b[:n])
		}
	case "quit":
		fmt.Print(text, "QEMU: Terminated\n\r")
		os.Exit(0)
	case "killed":
		fmt.Print(text)
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: terminating on signal 15 from pid 4242 (kill)")
		os.Exit(0)
	}
}

// qmpPathFromArgs finds the socket of c2vm's own monitor.
func qmpPathFromArgs(args []string) string {
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "socket,id=c2vm-qmp,path="); ok {
			p, _, _ := strings.Cut(rest, ",server=on")
			return p
		}
	}
	panic("no c2vm-qmp socket in the arguments")
}

// serveQMP answers QMP on sock, one client after another. On
// system_powerdown an obedient guest prints its last words and powers off.
func serveQMP(sock string, obey bool, lastWords string) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		panic(err)
	}
	ports := serveForwards(os.Args[1:])
	fmt.Println("Booting from Hard Disk...")
	presses := 0
	for {
		c, err := l.Accept()
		if err != nil {
			panic(err)
		}
		fmt.Fprintln(c, `{"QMP": {"version": {}, "capabilities": []}}`)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var req struct{ Execute string }
			json.Unmarshal(sc.Bytes(), &req)
			switch req.Execute {
			case "qmp_capabilities":
				fmt.Fprintln(c, `{"return": {}}`)
			case "query-status":
				fmt.Fprintln(c, `{"return": {"status": "running", "running": true}}`)
			case "human-monitor-command":
				b, _ := json.Marshal(map[string]string{"return": ports.usernet()})
				fmt.Fprintf(c, "%s\n", b)
			case "system_powerdown":
				presses++
				fmt.Printf("POWER BUTTON %d\n", presses)
				fmt.Fprintln(c, `{"timestamp": {}, "event": "POWERDOWN"}`)
				fmt.Fprintln(c, `{"return": {}}`)
				if obey {
					fmt.Print(lastWords, "reboot: Power down\n")
					os.Exit(0)
				}
			default:
				fmt.Fprintln(c, `{"error": {"class": "CommandNotFound", "desc": "no"}}`)
			}
		}
		c.Close()
	}
}

// fakeRun prepares a run of the stand-in: a disk (with c2vm.json when meta
// is set) and the options the tests share.
func fakeRun(t *testing.T, mode, console, meta string) Options {
	t.Helper()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	old := qemuBinary
	qemuBinary = self
	t.Cleanup(func() { qemuBinary = old })
	t.Setenv("FAKE_QEMU", mode)
	t.Setenv("FAKE_CONSOLE", console)
	// Each test's VMs live in a state directory of its own.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	dir := t.TempDir()
	disk := filepath.Join(dir, "linux.img")
	// An MBR's boot signature is all a disk needs to be taken for one.
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xAA
	if err := os.WriteFile(disk, mbr, 0o644); err != nil {
		t.Fatal(err)
	}
	if meta != "" {
		os.WriteFile(filepath.Join(dir, "c2vm.json"), []byte(meta), 0o644)
	}
	return Options{Disk: disk, Firmware: "bios", Accel: "tcg"}
}

const appMeta = `{"mode": "app", "firmware": "hybrid"}`

// runArgs runs the stand-in with o and returns the arguments it got
// (FAKE_ARGS must name argsFile).
func runArgs(t *testing.T, o Options, argsFile string) []string {
	t.Helper()
	if err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	if err := json.Unmarshal(b, &args); err != nil {
		t.Fatal(err)
	}
	return args
}

// sleepForever hangs as a stuck QEMU does, until it is killed. Asleep, not
// blocked: without cgo the runtime reports a program whose goroutines all
// block as a deadlock.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
