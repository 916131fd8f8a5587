package bootstrap

import (
	"fmt"
	"path"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/appinit"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// System mode runs what the container ran as a systemd service,
// c2vm-app.service: ExecStart from ENTRYPOINT+CMD, the environment, working
// directory, user and stop signal of the image config. Everything in it is
// image input, so every value is validated and quoted for systemd's unit
// file syntax; what cannot be written faithfully is an error, not a guess.

// ServicePolicy is C2VM_APP: whether to write c2vm-app.service. Auto
// writes it when the image names a program other than a bare shell;
// service always does; off never does.
type ServicePolicy string

const (
	ServiceAuto   ServicePolicy = "auto"
	ServiceAlways ServicePolicy = "service"
	ServiceOff    ServicePolicy = "off"
)

const appUnitPath = "/etc/systemd/system/c2vm-app.service"

// WantsService applies C2VM_APP's rule to an image config.
func WantsService(app ServicePolicy, cfg ocispecs.ImageConfig) bool {
	switch app {
	case ServiceOff:
		return false
	case ServiceAlways:
		return true
	}
	if len(cfg.Entrypoint) > 0 {
		return true
	}
	return len(cfg.Cmd) > 0 && !bareShell(cfg.Cmd)
}

// bareShell is a CMD that only starts a shell: bash, sh (with or without a
// path, with or without -l): what base images set, not a program.
func bareShell(cmd []string) bool {
	switch path.Base(cmd[0]) {
	case "bash", "sh", "dash", "ash", "zsh", "fish", "ksh":
	default:
		return false
	}
	for _, a := range cmd[1:] {
		if a != "-l" && a != "--login" && a != "-i" {
			return false
		}
	}
	return true
}

// AppUnit is the text of c2vm-app.service. argv0 is the program already
// resolved to an absolute path in the image (systemd does not search the
// image's PATH).
func AppUnit(cfg ocispecs.ImageConfig, argv []string) (string, error) {
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		return "", fmt.Errorf("the image's ENTRYPOINT/CMD names no program to run as a service")
	}
	var b strings.Builder
	b.WriteString(`# c2vm: the image's ENTRYPOINT and CMD as a service (C2VM_APP=off leaves it out).
[Unit]
Description=The image's program (c2vm)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=`)
	for i, a := range argv {
		q, err := unitQuote(a, true)
		if err != nil {
			return "", fmt.Errorf("ENTRYPOINT/CMD argument %d: %w", i, err)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(q)
	}
	b.WriteByte('\n')
	for _, e := range cfg.Env {
		k, _, _ := strings.Cut(e, "=")
		if !envName(k) {
			return "", fmt.Errorf("ENV %q: systemd takes only names of letters, digits and _", k)
		}
		q, err := unitQuote(e, false)
		if err != nil {
			return "", fmt.Errorf("ENV %s: %w", k, err)
		}
		fmt.Fprintf(&b, "Environment=%s\n", q)
	}
	if cfg.WorkingDir != "" {
		// A path, not a quoted word: systemd takes the rest of the line and
		// expands only specifiers.
		dir := path.Clean(cfg.WorkingDir)
		if _, err := unitQuote(dir, false); err != nil || !strings.HasPrefix(dir, "/") || dir != strings.TrimSpace(dir) {
			return "", fmt.Errorf("WORKDIR %q is not an absolute path systemd can take", cfg.WorkingDir)
		}
		fmt.Fprintf(&b, "WorkingDirectory=%s\n", strings.ReplaceAll(dir, "%", "%%"))
	}
	if cfg.User != "" {
		user, group, _ := strings.Cut(cfg.User, ":")
		for _, v := range []string{user, group} {
			if v != "" && !accountName(v) {
				return "", fmt.Errorf("USER %q is not a user or group name or number", cfg.User)
			}
		}
		fmt.Fprintf(&b, "User=%s\n", user)
		if group != "" {
			fmt.Fprintf(&b, "Group=%s\n", group)
		}
	}
	sig := "SIGTERM"
	if cfg.StopSignal != "" {
		s, err := appinit.ParseSignal(cfg.StopSignal)
		if err != nil {
			return "", fmt.Errorf("STOPSIGNAL: %w", err)
		}
		sig = signalName(s)
	}
	fmt.Fprintf(&b, "KillSignal=%s\nRestart=on-failure\nStandardOutput=journal+console\nStandardError=journal+console\n\n[Install]\nWantedBy=multi-user.target\n", sig)
	return b.String(), nil
}

// unitQuote double-quotes a value for a unit file: backslash and quote
// escaped, % (specifiers) doubled and, in command lines, $ (variable
// expansion) doubled. Control characters cannot be written faithfully.
func unitQuote(s string, command bool) (string, error) {
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%q holds a control character", s)
		}
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	s = r.Replace(s)
	if command {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	return `"` + s + `"`, nil
}

func envName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	return strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// accountName admits what useradd and systemd take: letters, digits, . _ -
// (not first) and a trailing $, or a number.
func accountName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' || s[0] == '.' {
		return false
	}
	return strings.Trim(strings.TrimSuffix(s, "$"), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == ""
}

// signalName is the name systemd's KillSignal= takes.
func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("SIGRTMIN+%d", int(s)-34)
}

// AddAppService writes c2vm-app.service and enables it, and disables the
// twins, the image's own services that run the same program.
func AddAppService(st llb.State, unit string, twins Twins, o Options) llb.State {
	const wants = "/etc/systemd/system/multi-user.target.wants"
	fa := llb.Mkdir(wants, 0o755, llb.WithParents(true)).
		Mkfile(appUnitPath, 0o644, []byte(unit)).
		Rm(wants+"/c2vm-app.service", llb.WithAllowNotFound(true)).
		Symlink(appUnitPath, wants+"/c2vm-app.service")
	name := "add c2vm-app.service"
	for _, l := range twins.Links() {
		fa = fa.Rm(l, llb.WithAllowNotFound(true))
	}
	if len(twins.Units) > 0 {
		name += ", disable " + twins.Names()
	}
	return st.File(fa, o.constraints(name)...)
}
