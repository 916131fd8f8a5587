package vmrun

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// TCGAccel is the -accel value c2vm gives a QEMU binary for emulation.
//
// QEMU before 8.1 could translate a page of guest code on one vCPU's
// thread while another thread changed it (fixed upstream by "accel/tcg:
// Always lock pages before translation"). Guests of such a QEMU with
// more than one vCPU crash now and then ("Oops: int3" in the kernel's own
// code, a page fault in an interrupt, a soft lockup), on Debian's and
// Ubuntu's kernels alike (docs/troubleshooting.md). One translation
// thread for all vCPUs cannot race; a boot takes about a third longer on
// two host cores.
// Newer QEMU keeps its default, one thread per vCPU. A QEMU whose
// version cannot be read in time is treated as old.
func TCGAccel(ctx context.Context, qemu string) string {
	return tcgAccelFor(versionOf(ctx, qemu))
}

// tcgAccelFor is TCGAccel for a QEMU whose -version printed version.
func tcgAccelFor(version string) string {
	if tcgRaces(version) {
		return "tcg,thread=single"
	}
	return "tcg"
}

// versionOf is what `qemu -version` prints, or "" when it cannot be read
// in time.
func versionOf(ctx context.Context, qemu string) string {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-version")
	// A wrapper script's child can keep the pipe open after the kill.
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

var versionTimeout = 10 * time.Second

var qemuVersion = regexp.MustCompile(`QEMU emulator version (\d+)\.(\d+)`)

// tcgRaces tells from `qemu -version`'s output whether that QEMU's
// multi-threaded TCG has the translation race (before 8.1, or unknown).
func tcgRaces(version string) bool {
	return !versionAtLeast(version, 8, 1)
}

// versionAtLeast tells from `qemu -version`'s output whether that QEMU is
// major.minor or later; an unknown version is not.
func versionAtLeast(version string, major, minor int) bool {
	m := qemuVersion.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	gotMajor, err1 := strconv.Atoi(m[1])
	gotMinor, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return false
	}
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}
