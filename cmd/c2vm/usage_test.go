package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Command-line mistakes get one message and a fix line, like every other
// error; --version answers.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"assemble"}, "accepts 1 arg(s), received 0"},
		{[]string{"assemble", "--nope", "x"}, "unknown flag: --nope"},
		{[]string{"run", "--cpus"}, "flag needs an argument"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		err, stderr := runC2VM(t, nil, c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "fix:") || strings.Count(stderr, "c2vm:") != 1 {
			t.Errorf("c2vm %v: %v\n%s", c.args, err, stderr)
		}
	}
	out, err := exec.Command(c2vm, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "c2vm ") {
		t.Errorf("--version: %v %q", err, out)
	}
}
