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
	cpu    time.Duration // user and system time of the command and its waited-for children
	maxRSS int64         // bytes, the largest process in the tree
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
		s.cpu = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
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

// medianCPU is the median of the runs' CPU times: unlike wall time it
// does not wait on the disk, so it shows work done, emulated or not.
func (s series) medianCPU() time.Duration {
	c := make([]time.Duration, len(s))
	for i, x := range s {
		c[i] = x.cpu
	}
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	if len(c) == 0 {
		return 0
	}
	return c[len(c)/2]
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

// job is a timed command and its untimed preparation.
type job struct{ prepare, script string }

// interleave runs each job reps times, taking turns, so that the machine's
// drift during a run (this host's disk and CPU vary by tens of percent
// from minute to minute) falls on each alike. A job that fails is not run
// again; errs says which.
func interleave(reps int, env []string, jobs ...job) (out []series, errs []error) {
	out, errs = make([]series, len(jobs)), make([]error, len(jobs))
	for range reps {
		for i, j := range jobs {
			if errs[i] != nil {
				continue
			}
			if j.prepare != "" {
				if _, errs[i] = runTimed(env, j.prepare); errs[i] != nil {
					continue
				}
			}
			var x sample
			if x, errs[i] = runTimed(env, j.script); errs[i] == nil {
				out[i] = append(out[i], x)
			}
		}
	}
	return out, errs
}

// repeat runs script reps times after an untimed prepare step each time.
func repeat(reps int, env []string, prepare, script string) (series, error) {
	s, errs := interleave(reps, env, job{prepare, script})
	return s[0], errs[0]
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
