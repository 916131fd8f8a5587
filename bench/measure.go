package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// sample is one timed run of a command tree.
type sample struct {
	wall   time.Duration
	maxRSS int64 // bytes, the largest process in the tree
}

// runTimed runs a shell command and reports its wall time and peak RSS
// (wait4's rusage: the largest of the command and its waited-for children).
func runTimed(env []string, script string) (sample, error) {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.maxRSS = ru.Maxrss * 1024
	}
	if err != nil {
		return s, fmt.Errorf("%s: %v\n%s", script, err, tail(out.String(), 2000))
	}
	return s, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// series is the repetitions of one row.
type series []sample

func (s series) walls() []time.Duration {
	w := make([]time.Duration, len(s))
	for i, x := range s {
		w[i] = x.wall
	}
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	return w
}

func (s series) median() time.Duration {
	w := s.walls()
	if len(w) == 0 {
		return 0
	}
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

func (s series) spread() string {
	w := s.walls()
	if len(w) == 0 {
		return ""
	}
	return fmt.Sprintf("%s–%s", secs(w[0]), secs(w[len(w)-1]))
}

// min is the fastest run: for the floor, the best this machine can do.
func (s series) min() time.Duration {
	w := s.walls()
	if len(w) == 0 {
		return 0
	}
	return w[0]
}

func (s series) peakRSS() int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.maxRSS)
	}
	return m
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// repeat runs script reps times after an untimed prepare step each time.
func repeat(reps int, env []string, prepare, script string) (series, error) {
	var s series
	for range reps {
		if prepare != "" {
			if _, err := runTimed(env, prepare); err != nil {
				return nil, err
			}
		}
		x, err := runTimed(env, script)
		if err != nil {
			return nil, err
		}
		s = append(s, x)
	}
	return s, nil
}

// duBytes is the allocated size of a file or tree.
func duBytes(p string) int64 {
	out, err := exec.Command("du", "-s", "--block-size=1", p).Output()
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(string(out), &n)
	return n
}

// apparentBytes is the sum of file sizes as ls shows them.
func apparentBytes(p string) int64 {
	out, err := exec.Command("du", "-s", "--apparent-size", "--block-size=1", p).Output()
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(string(out), &n)
	return n
}
