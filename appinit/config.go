package appinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Paths shared with the host side (exporter/initramfs writes the module
// list; the exporter writes the config into the root filesystem).
const (
	// ConfigPath is the program's Config in the image's root filesystem.
	ConfigPath = "/.c2vm/config.json"
	// ModuleListPath lists, in the initramfs, the modules to load in order,
	// one per line in modules.dep syntax: "path: dep dep…", paths relative
	// to the initramfs root. A module whose dependency failed is skipped.
	ModuleListPath = "/.c2vm/modules.load"
)

// DefaultHostname is the hostname when the config names none (Docker uses
// the container ID; a VM has none).
const DefaultHostname = "c2vm"

// maxConfigBytes bounds the config: it comes from an image config.
const maxConfigBytes = 1 << 20

// Config is what the program runs with: the image config's fields of the
// same names (ExposedPorts as "port/proto") and the VM's hostname. The
// exporter writes it from the image config, which is hostile input, so the
// exporter and the init both call Validate.
type Config struct {
	Entrypoint   []string `json:"Entrypoint,omitempty"`
	Cmd          []string `json:"Cmd,omitempty"`
	Env          []string `json:"Env,omitempty"`
	WorkingDir   string   `json:"WorkingDir,omitempty"`
	User         string   `json:"User,omitempty"`
	StopSignal   string   `json:"StopSignal,omitempty"`
	Hostname     string   `json:"Hostname,omitempty"`
	ExposedPorts []string `json:"ExposedPorts,omitempty"`
}

// Validate refuses what the kernel or the init cannot take: NUL bytes (they
// would truncate argv and env silently), an environment entry without a
// name, a relative working directory, a malformed user, an invalid hostname,
// an unknown stop signal and malformed exposed ports.
func (c *Config) Validate() error {
	fields := map[string][]string{"Entrypoint": c.Entrypoint, "Cmd": c.Cmd, "Env": c.Env, "ExposedPorts": c.ExposedPorts,
		"WorkingDir": {c.WorkingDir}, "User": {c.User}, "StopSignal": {c.StopSignal}, "Hostname": {c.Hostname}}
	for name, vals := range fields {
		for _, v := range vals {
			if strings.IndexByte(v, 0) >= 0 {
				return fmt.Errorf("config %s: %q holds a NUL byte", name, v)
			}
		}
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("config Env: %q is not NAME=value", e)
		}
	}
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		return fmt.Errorf("config WorkingDir: %q is not an absolute path", c.WorkingDir)
	}
	if len(c.User) > 256 || strings.Count(c.User, ":") > 1 {
		return fmt.Errorf("config User: %q is not user, uid, user:group or uid:gid", c.User)
	}
	if c.Hostname != "" && !validHostname(c.Hostname) {
		return fmt.Errorf("config Hostname: %q is not a valid host name (letters, digits, '-' and '.', at most 64 bytes)", c.Hostname)
	}
	if c.StopSignal != "" {
		if _, err := ParseSignal(c.StopSignal); err != nil {
			return fmt.Errorf("config StopSignal: %w", err)
		}
	}
	for _, p := range c.ExposedPorts {
		if !validPort(p) {
			return fmt.Errorf("config ExposedPorts: %q is not port or port/tcp|udp|sctp", p)
		}
	}
	return nil
}

// validHostname follows RFC 1123 within Linux's 64-byte limit.
func validHostname(h string) bool {
	if len(h) > 64 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func validPort(p string) bool {
	num, proto, ok := strings.Cut(p, "/")
	if ok && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return false
	}
	n, err := strconv.Atoi(num)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == num
}

// Realtime signal numbers as userspace (glibc, Docker) names them: the C
// library keeps the first two for itself.
const sigRTMIN, sigRTMAX = 34, 64

// ParseSignal reads a stop signal as Docker does: a number, or a name with
// or without SIG in any case, RTMIN+n and RTMAX-n included.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMAX {
			return 0, fmt.Errorf("signal number %d out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	switch {
	case name == "RTMIN":
		return sigRTMIN, nil
	case name == "RTMAX":
		return sigRTMAX, nil
	case strings.HasPrefix(name, "RTMIN+"), strings.HasPrefix(name, "RTMAX-"):
		n, err := strconv.Atoi(name[6:])
		if err != nil || n < 0 || n > sigRTMAX-sigRTMIN {
			return 0, fmt.Errorf("unknown signal %q", s)
		}
		if name[5] == '+' {
			return syscall.Signal(sigRTMIN + n), nil
		}
		return syscall.Signal(sigRTMAX - n), nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// LoadConfig reads and validates the config at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, errors.New("config larger than 1 MiB")
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, c.Validate()
}
