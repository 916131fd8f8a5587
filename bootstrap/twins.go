package bootstrap

import (
	"fmt"
	"strings"
)

// Twins are the services enabled in the image that run the program
// c2vm-app.service would run.
type Twins struct {
	Program string // the program's file, every link followed
	Units   []Service
}

// FindTwins looks for enabled services whose ExecStart= runs program, an
// absolute path in the image.
func FindTwins(t Tree, program string) Twins {
	file, ok := resolveFile(t, program)
	if !ok || !printable(file) {
		return Twins{}
	}
	tw := Twins{Program: file}
	dirs := resolved(t, unitDirs)
	for _, s := range enabledServices(t, resolved(t, enableDirs)) {
		if runs(t, dirs, s.Name, file) {
			tw.Units = append(tw.Units, s)
		}
	}
	return tw
}

// runs says whether the unit called name has an ExecStart= of file.
func runs(t Tree, dirs []string, name, file string) bool {
	f, ok := unitFile(t, dirs, name)
	if !ok {
		return false
	}
	unit, ok := t.ReadFile(f, maxUnitBytes)
	if !ok {
		return false
	}
	for _, p := range execPrograms(unit) {
		if e, ok := execFile(t, p); ok && e == file {
			return true
		}
	}
	return false
}

// Links are the links that enable the twins.
func (tw Twins) Links() []string {
	var out []string
	for _, u := range tw.Units {
		out = append(out, u.Links...)
	}
	return out
}

// Names are the twins' unit names, comma-separated.
func (tw Twins) Names() string {
	var n []string
	for _, u := range tw.Units {
		n = append(n, u.Name)
	}
	return strings.Join(n, ", ")
}

// Note is the build log line that says which of them runs the program.
func (tw Twins) Note(app ServicePolicy) string {
	one := len(tw.Units) == 1
	if app == ServiceAlways {
		return fmt.Sprintf("c2vm: c2vm-app.service runs %s; %s, which %s it too, disabled (C2VM_APP=auto keeps %s instead)",
			tw.Program, tw.Names(), pick(one, "runs", "run"), pick(one, "it", "them"))
	}
	return fmt.Sprintf("c2vm: %s already %s %s; c2vm-app.service not added (C2VM_APP=service adds it and disables %s)",
		tw.Names(), pick(one, "runs", "run"), tw.Program, tw.Names())
}

func pick(one bool, singular, plural string) string {
	if one {
		return singular
	}
	return plural
}
