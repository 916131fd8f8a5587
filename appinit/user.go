package appinit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Identity is who the program runs as, resolved the way Docker (runc's
// GetExecUser) does.
type Identity struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Home     string   // "" when the user has no passwd entry
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// maxIDFileBytes bounds /etc/passwd and /etc/group: they come from the image.
const maxIDFileBytes = 4 << 20

// readIDFile reads an image's passwd or group file; a missing file is nil,
// which is not the same as an empty one for name lookups.
func readIDFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIDFileBytes))
	if data == nil {
		data = []byte{}
	}
	return data, err
}

// parseID accepts the ids runc accepts: 0 to 2^31-1.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 31)
	return uint32(n), err == nil
}

// idLines yields the colon-separated fields of each non-comment line with at
// least n fields and a numeric id in field idField.
func idLines(data []byte, n, idField int, fn func(f []string, id uint32) bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxIDFileBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		if id, ok := parseID(f[idField]); ok && !fn(f, id) {
			return
		}
	}
}

func findUser(passwd []byte, match func(passwdEntry) bool) (passwdEntry, bool) {
	var found passwdEntry
	ok := false
	idLines(passwd, 7, 2, func(f []string, uid uint32) bool {
		gid, gok := parseID(f[3])
		e := passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]}
		if gok && match(e) {
			found, ok = e, true
			return false // first match wins, as in runc
		}
		return true
	})
	return found, ok
}

func groups(group []byte) []groupEntry {
	var gs []groupEntry
	idLines(group, 3, 2, func(f []string, gid uint32) bool {
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		gs = append(gs, g)
		return true
	})
	return gs
}

// ResolveUser turns a config's User ("", name, uid, name:group, uid:gid…)
// into ids against the image's passwd and group files (nil when absent). As
// in Docker: a number needs no passwd entry, a name does; a group given
// explicitly replaces the primary group and then no supplementary groups
// are added; otherwise the supplementary groups are those of /etc/group
// that list the user's name.
func ResolveUser(spec string, passwd, group []byte) (Identity, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	var id Identity
	name := ""
	uid, numeric := parseID(userArg)
	e, found := findUser(passwd, func(e passwdEntry) bool {
		if userArg == "" {
			return e.uid == 0
		}
		if numeric {
			return e.uid == uid
		}
		return e.name == userArg
	})
	switch {
	case found:
		id.UID, id.GID, id.Home, name = e.uid, e.gid, e.home, e.name
	case userArg == "":
	case numeric:
		id.UID = uid
	case passwd == nil:
		return id, fmt.Errorf("unable to find user %s: the image has no /etc/passwd", userArg)
	default:
		return id, fmt.Errorf("unable to find user %s: no matching entries in /etc/passwd", userArg)
	}
	if groupArg != "" {
		gid, err := resolveGroup(groupArg, group)
		id.GID = gid
		return id, err
	}
	if name != "" {
		for _, g := range groups(group) {
			for _, m := range g.members {
				if m == name {
					id.Groups = append(id.Groups, g.gid)
					break
				}
			}
		}
	}
	return id, nil
}

func resolveGroup(arg string, group []byte) (uint32, error) {
	gid, numeric := parseID(arg)
	for _, g := range groups(group) {
		if numeric && g.gid == gid || !numeric && g.name == arg {
			return g.gid, nil
		}
	}
	if numeric {
		return gid, nil
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in /etc/group", arg)
}

// hasGID reports whether the group file defines gid.
func hasGID(group []byte, gid uint32) bool {
	for _, g := range groups(group) {
		if g.gid == gid {
			return true
		}
	}
	return false
}
