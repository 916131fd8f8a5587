//go:build world

package world

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The edit–build–boot loop: after editing the last line of a Dockerfile,
// the kernel install (beneath the user's steps) comes from the cache and
// only the edited step, guest configuration and assembly run. The default
// output then boots with c2vm run, which gives it room: apt-get update
// works in the guest and at least 1 GiB is free.
func TestEditRebuildAndRoom(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	script := `#!/bin/sh
for i in $(seq 60); do ip4=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+\.'); [ -n "$ip4" ] && break; sleep 1; done
if apt-get update >/dev/null 2>&1; then update=ok; else update=failed; fi
echo "C2VM-MARKER update=$update free=$(df -B1 --output=avail / | tail -n1 | tr -d ' ') last=$(cat /etc/c2vm-last)" >/dev/ttyS0
systemctl --no-block poweroff
`
	must(t, os.WriteFile(filepath.Join(dir, "c2vm-marker"), []byte(script), 0o755))
	write := func(last string) {
		must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), append(append([]byte{}, df...), []byte("RUN echo "+last+" >/etc/c2vm-last\n")...), 0o644))
	}
	write("first")
	if _, err := buildInProcess(t, dir, t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	write("second")
	out := t.TempDir()
	vertices, err := buildInProcess(t, dir, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ran, cached []string
	for name, v := range vertices {
		if v.Cached {
			cached = append(cached, name)
		} else {
			ran = append(ran, name)
		}
	}
	t.Logf("ran: %q", ran)
	for _, want := range []string{"install kernel (debian)", "apt-get update"} {
		if !hasVertex(cached, want) || hasVertex(ran, want) {
			t.Errorf("%q ran again after an edit of the last line", want)
		}
	}
	for _, want := range []string{"echo second", "configure guest", "assemble disk"} {
		if !hasVertex(ran, want) {
			t.Errorf("%q did not run", want)
		}
	}
	facts := boot(t, filepath.Join(out, "linux.img"), "bios")
	free, _ := strconv.ParseInt(facts["free"], 10, 64)
	if facts["update"] != "ok" || free < 1<<30 || facts["last"] != "second" {
		t.Errorf("guest: %v (free %d)", facts, free)
	}
}

func hasVertex(names []string, part string) bool {
	for _, n := range names {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}
