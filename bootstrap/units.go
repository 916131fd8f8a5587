package bootstrap

import (
	"path"
	"slices"
	"strings"

	"github.com/c2vm/c2vm/internal/chroot"
)

// A distribution package may already run the image's program as an
// enabled systemd unit (Debian's nginx enables nginx.service). A second
// copy as c2vm-app.service fails on the first one's port and restarts
// forever, so the frontend looks for such units before adding the service.
// Everything here is read from the image: file sizes, entry counts and link
// chains are bounded, and links are followed only inside the image's root.

// Tree reads the image's filesystem. The paths it is given are absolute and
// hold no symlink (resolve makes them so).
type Tree interface {
	// Lstat returns the entry at a path without following it.
	Lstat(p string) (Entry, bool)
	// ReadDir lists a directory.
	ReadDir(dir string) []Entry
	// ReadFile reads a regular file of at most max bytes.
	ReadFile(p string, max int) ([]byte, bool)
}

// Entry is a directory entry; Link is a symlink's target.
type Entry struct {
	Name, Link string
	Dir        bool
}

const (
	maxUnitBytes = 64 << 10 // a larger unit file is not read
	maxEnabled   = 256      // *.wants directories and links examined
)

// resolve follows every symlink in p inside the image's root, as in a
// chroot (internal/chroot). Every component must exist.
func resolve(t Tree, p string) (string, bool) {
	r, err := chroot.Resolve(p, func(q string) (string, bool, error) {
		e, ok := t.Lstat(q)
		if !ok {
			return "", false, chroot.ErrNotExist
		}
		return e.Link, e.Link != "", nil
	}, false)
	return r, err == nil
}

// resolveFile is resolve for a path that must name a file, not a directory.
func resolveFile(t Tree, p string) (string, bool) {
	r, ok := resolve(t, p)
	if !ok {
		return "", false
	}
	e, ok := t.Lstat(r)
	return r, ok && !e.Dir
}

// unitDirs are where systemd finds a unit by name, in its order of
// precedence (/run is empty in an image).
var unitDirs = []string{"/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// enableDirs hold the *.wants and *.requires directories whose links
// enable units.
var enableDirs = []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

// Service is a service unit enabled in the image, with the links that
// enable it.
type Service struct {
	Name  string
	Links []string
}

// enabledServices lists the services linked from the *.wants and
// *.requires directories of dirs, by name.
func enabledServices(t Tree, dirs []string) []Service {
	var out []Service
	n := 0
	for _, dir := range dirs {
		for _, w := range t.ReadDir(dir) {
			if !strings.HasSuffix(w.Name, ".wants") && !strings.HasSuffix(w.Name, ".requires") {
				continue
			}
			if n++; n > maxEnabled {
				return out
			}
			wants, ok := resolve(t, path.Join(dir, w.Name))
			if !ok {
				continue
			}
			for _, e := range t.ReadDir(wants) {
				if n++; n > maxEnabled {
					return out
				}
				if e.Link != "" && strings.HasSuffix(e.Name, ".service") && unitName(e.Name) {
					out = addLink(out, e.Name, path.Join(wants, e.Name))
				}
			}
		}
	}
	return out
}

// resolved are the directories that exist, each once, every link followed.
func resolved(t Tree, dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if r, ok := resolve(t, d); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func addLink(s []Service, name, link string) []Service {
	i := slices.IndexFunc(s, func(u Service) bool { return u.Name == name })
	if i < 0 {
		return append(s, Service{Name: name, Links: []string{link}})
	}
	s[i].Links = append(s[i].Links, link)
	return s
}

// unitName admits the characters systemd allows in a unit name.
func unitName(s string) bool {
	return len(s) <= 255 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_.\\@") == ""
}

// unitFile finds a unit's file as systemd does: by name along dirs (the
// resolved unitDirs), a template's instance (getty@tty1.service) by the
// template's name (getty@.service). The first file found wins, so a unit
// masked in /etc (a link to /dev/null, which has no ExecStart=) runs
// nothing.
func unitFile(t Tree, dirs []string, name string) (string, bool) {
	names := []string{name}
	if at := strings.IndexByte(name, '@'); at >= 0 {
		names = append(names, name[:at+1]+path.Ext(name))
	}
	for _, n := range names {
		for _, dir := range dirs {
			if _, ok := t.Lstat(path.Join(dir, n)); !ok {
				continue
			}
			return resolveFile(t, path.Join(dir, n))
		}
	}
	return "", false
}
