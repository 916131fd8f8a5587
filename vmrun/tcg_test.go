package vmrun

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTCGRaces(t *testing.T) {
	for version, races := range map[string]bool{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022": true,
		"QEMU emulator version 8.0.4 (Debian 1:8.0.4+dfsg-1ubuntu3.23.10.3)":                      true,
		"QEMU emulator version 8.1.0":                     false,
		"QEMU emulator version 9.2.2 (qemu-9.2.2-1.fc42)": false,
		"QEMU emulator version 10.0.0":                    false,
		"QEMU emulator version 6.2.0":                     true,
		"":                                                true,
		"qemu-system-x86_64: unknown option":              true,
		"QEMU emulator version 99999999999999999999.1":    true,
	} {
		if got := tcgRaces(version); got != races {
			t.Errorf("tcgRaces(%q) = %v, want %v", version, got, races)
		}
	}
}

// TestRunTCGThreads checks, through the stand-in, the -accel value QEMU
// gets under TCG: one translation thread for a QEMU with the race.
func TestRunTCGThreads(t *testing.T) {
	for version, want := range map[string]string{
		"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)": "tcg,thread=single",
		"QEMU emulator version 9.2.2":                                    "tcg",
		"garbage":                                                        "tcg,thread=single",
	} {
		o := fakeRun(t, "console", "", "")
		argsFile := filepath.Join(t.TempDir(), "args.json")
		t.Setenv("FAKE_ARGS", argsFile)
		t.Setenv("FAKE_VERSION", version)
		args := runArgs(t, o, argsFile)
		i := slices.Index(args, "-accel")
		if i < 0 || i+1 >= len(args) || args[i+1] != want {
			t.Errorf("%s: QEMU got %q, want -accel %s", version, args, want)
		}
	}
}

// A QEMU that never answers -version (here a wrapper whose child keeps
// the pipe open) costs the timeout and gets one thread, never a hang.
func TestTCGAccelHungQEMU(t *testing.T) {
	old := versionTimeout
	versionTimeout = 200 * time.Millisecond
	t.Cleanup(func() { versionTimeout = old })
	dir := t.TempDir()
	qemu, pidFile := filepath.Join(dir, "qemu"), filepath.Join(dir, "child.pid")
	script := "#!/bin/sh\nsleep 60 &\necho $! >" + pidFile + "\nwait\n"
	if err := os.WriteFile(qemu, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The wrapper's child outlives the kill of the wrapper: stop it.
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	if got := TCGAccel(context.Background(), qemu); got != "tcg,thread=single" {
		t.Errorf("got %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}
