//go:build world

package world

import (
	"path/filepath"
	"strings"
	"testing"
)

const nginxDockerfile = `FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nginx
CMD ["nginx", "-g", "daemon off;"]
`

// nginxMarker waits for whichever unit runs nginx, then long enough for a
// second nginx to fail on the port and restart, and prints what runs.
// nginx retries a busy port for about 2.5 s; 15 s leaves room for a guest
// that shares the host's cores with another test's VM.
const nginxMarker = `#!/bin/sh
for i in $(seq 60); do systemctl is-active -q nginx.service c2vm-app.service && break; sleep 1; done
sleep 15
masters=0
for f in /proc/[0-9]*/cmdline; do
  case "$(tr '\0' ' ' <"$f" 2>/dev/null)" in "nginx: master"*) masters=$((masters+1)) ;; esac
done
state() { s=$(systemctl is-enabled "$1" 2>/dev/null); echo "${s:-none}"; }
restarts() { systemctl show -p NRestarts --value "$1"; }
failed=$(systemctl --failed --no-legend --plain | awk '{printf "%s%s", sep, $1; sep=","}')
echo "C2VM-MARKER masters=$masters app=$(state c2vm-app.service) nginx=$(state nginx.service) app_restarts=$(restarts c2vm-app.service) nginx_restarts=$(restarts nginx.service) failed=${failed:-none}" >/dev/ttyS0
systemctl --no-block poweroff
`

// An nginx image whose CMD runs nginx, the program Debian's enabled
// nginx.service runs: system mode keeps the distribution's unit and adds no
// c2vm-app.service, so one nginx runs, nothing restarts and no unit fails.
// C2VM_APP=service swaps them.
func TestSystemModeDistroService(t *testing.T) {
	parallelBoot(t)
	dir := writeContext(t, map[string]string{"Dockerfile": nginxDockerfile + markerLines,
		"c2vm-marker": nginxMarker, "c2vm-marker.service": markerUnit})
	for _, c := range []struct {
		app, log string
		want     map[string]string
	}{
		{"auto", "c2vm: nginx.service already runs /usr/sbin/nginx; c2vm-app.service not added (C2VM_APP=service adds it and disables nginx.service)",
			map[string]string{"app": "none", "nginx": "enabled"}},
		{"service", "c2vm: c2vm-app.service runs /usr/sbin/nginx; nginx.service, which runs it too, disabled (C2VM_APP=auto keeps it instead)",
			map[string]string{"app": "enabled", "nginx": "disabled"}},
	} {
		t.Run(c.app, func(t *testing.T) {
			out := t.TempDir()
			log := buildx(t, "--build-arg", "BUILDKIT_SYNTAX="+env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_APP="+c.app, "-o", out, dir)
			if !strings.Contains(log, c.log) {
				t.Errorf("the build log lacks %q:\n%s", c.log, tail(log, 3000))
			}
			facts := bootWith(t, filepath.Join(out, "linux.img"), "--firmware", "bios", "--disk-size", "keep")
			want := map[string]string{"masters": "1", "app_restarts": "0", "nginx_restarts": "0", "failed": "none"}
			for k, v := range c.want {
				want[k] = v
			}
			for k, v := range want {
				if facts[k] != v {
					t.Errorf("%s=%q, want %q (all: %v)", k, facts[k], v, facts)
				}
			}
		})
	}
}
