package appinit

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultPath is Docker's PATH for Linux containers whose image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BuildEnv makes the program's environment in Docker's order: PATH,
// HOSTNAME and (with a terminal) TERM first, then the image's ENV replacing
// those or appended in order (a later duplicate wins in place), then HOME
// when the image sets none: the passwd home, or "/".
func BuildEnv(image []string, hostname, term, home string) []string {
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + hostname}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	at := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		at[k] = i
	}
	for _, e := range image {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := at[k]; ok {
			env[i] = e
			continue
		}
		at[k] = len(env)
		env = append(env, e)
	}
	if _, ok := at["HOME"]; !ok {
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home)
	}
	return env
}

// getenv returns the last value of k in env.
func getenv(env []string, k string) string {
	v := ""
	for _, e := range env {
		if ek, ev, ok := strings.Cut(e, "="); ok && ek == k {
			v = ev
		}
	}
	return v
}

// errNotFound is exec.ErrNotFound's message, which Docker prints too.
var errNotFound = errors.New("executable file not found in $PATH")

// LookPath finds argv[0] the way runc does (exec.LookPath after entering
// the container): a name with a slash is used as given, relative to the
// working directory; a bare name is searched in the program's own PATH
// (an empty entry and relative entries relative to cwd), and the first
// regular file with an execute bit wins. root is where the image's "/" is
// on this side: "/" in the guest after the switch, a directory in tests.
func LookPath(root, name, pathEnv, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if name == "" {
		return "", errNotFound
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if !path.IsAbs(dir) {
			dir = path.Join(cwd, dir)
		}
		p := path.Join(dir, name)
		fi, err := os.Stat(inRoot(root, p))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNotFound
}

// inRoot is p under root. Symlinks are the kernel's business: in the guest
// root is "/" and the process is chrooted, so nothing escapes the image.
func inRoot(root, p string) string {
	return filepath.Join(root, filepath.FromSlash(p))
}

// consoleTerm is TERM for a program whose stdio is the console. docker run
// -t sets TERM=xterm because a terminal without TERM breaks line editing
// and full-screen programs; here the terminal type is known from the
// console device, as systemd decides it: "linux" for a virtual terminal,
// "vt220" for a serial line, the safe common denominator of whatever
// terminal is at the other end. active is /sys/class/tty/console/active,
// whose last name is /dev/console.
func consoleTerm(active string) string {
	f := strings.Fields(active)
	if len(f) == 0 {
		return ""
	}
	dev := f[len(f)-1]
	if n, ok := strings.CutPrefix(dev, "tty"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		return "linux"
	}
	return "vt220"
}
