package bootstrap

import (
	"path"
	"strings"
)

// execPrograms are the programs of a unit file's ExecStart= lines in its
// [Service] section: the first word of each, after systemd's prefixes. An
// empty ExecStart= drops the lines before it, as in systemd. A word this
// cannot read as systemd would (escapes, specifiers, variables) is left
// out.
func execPrograms(unit []byte) []string {
	var progs []string
	section := ""
	for _, l := range unitLines(string(unit)) {
		if strings.HasPrefix(l, "[") {
			section = strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section != "[Service]" || strings.TrimSpace(k) != "ExecStart" {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			progs = nil
			continue
		}
		if p, ok := firstWord(strings.TrimLeft(v, "-@:+!")); ok {
			progs = append(progs, p)
		}
	}
	return progs
}

// unitLines are a unit file's lines without comments, a backslash at the
// end of a line joining it to the next.
func unitLines(s string) []string {
	var out []string
	var cont strings.Builder
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if cont.Len() == 0 && (l == "" || l[0] == '#' || l[0] == ';') {
			continue
		}
		if j, ok := strings.CutSuffix(l, `\`); ok {
			cont.WriteString(j + " ")
			continue
		}
		cont.WriteString(l)
		out = append(out, cont.String())
		cont.Reset()
	}
	return out
}

// firstWord is a command line's first word, unquoted.
func firstWord(v string) (string, bool) {
	w := v
	if v != "" && (v[0] == '"' || v[0] == '\'') {
		end := strings.IndexByte(v[1:], v[0])
		if end < 0 {
			return "", false
		}
		w = v[1 : end+1]
	} else if i := strings.IndexAny(v, " \t"); i >= 0 {
		w = v[:i]
	}
	if w == "" || strings.ContainsAny(w, `\%$"'`) || !printable(w) {
		return "", false
	}
	return w, true
}

// printable is true for text without control characters, which would
// act on a terminal showing the build log.
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 })
}

// systemdPath is where systemd looks for an ExecStart= program named
// without a directory.
var systemdPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// execFile resolves an ExecStart= program to its file in the image.
func execFile(t Tree, prog string) (string, bool) {
	if strings.HasPrefix(prog, "/") {
		return resolveFile(t, prog)
	}
	if strings.Contains(prog, "/") {
		return "", false
	}
	for _, d := range systemdPath {
		if f, ok := resolveFile(t, path.Join(d, prog)); ok {
			return f, true
		}
	}
	return "", false
}
