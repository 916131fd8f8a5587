package initramfs

import (
	"fmt"
	"sort"
)

// plan is the modules an initramfs holds, in load order: every module
// after its hard dependencies and its pre-softdeps, before its
// post-softdeps.
type plan struct {
	order   []string            // names
	deps    map[string][]string // name → its hard dependencies
	missing []string            // requested names this kernel lacks
	notes   []string            // modules left out, and why
}

// Visit states.
const (
	visiting = iota + 1
	done
	unavailable
)

type planner struct {
	ix    *index
	p     *plan
	state map[string]int
}

func (ix *index) plan(requested []string) (*plan, error) {
	pl := &planner{ix: ix, p: &plan{deps: map[string][]string{}}, state: map[string]int{}}
	for _, r := range requested {
		ok, err := pl.visit(modName(r))
		if err != nil {
			return nil, err
		}
		if !ok {
			pl.p.missing = append(pl.p.missing, r)
		}
	}
	return pl.p, nil
}

// visit adds a module (or what an alias names) and reports whether it is
// available: built in, or in the plan with all its hard dependencies.
func (pl *planner) visit(name string) (bool, error) {
	ix := pl.ix
	if ix.builtin[name] {
		return true, nil
	}
	if _, ok := ix.paths[name]; !ok {
		return pl.visitAlias(name)
	}
	switch pl.state[name] {
	case visiting, done: // visiting: a softdep cycle, already on its way
		return true, nil
	case unavailable:
		return false, nil
	}
	pl.state[name] = visiting
	deps, err := ix.depsOf(name)
	if err != nil {
		return false, err
	}
	for _, s := range ix.pre[name] {
		if _, err := pl.visit(s); err != nil {
			return false, err
		}
	}
	// modprobe loads modules.dep's list from its end.
	for i := len(deps) - 1; i >= 0; i-- {
		ok, err := pl.visit(deps[i])
		if err != nil {
			return false, err
		}
		if !ok {
			pl.state[name] = unavailable
			pl.p.notes = append(pl.p.notes, fmt.Sprintf("%s left out: it needs %s, which this kernel lacks", name, deps[i]))
			return false, nil
		}
	}
	pl.state[name] = done
	pl.p.order = append(pl.p.order, name)
	pl.p.deps[name] = deps
	for _, s := range ix.post[name] {
		if _, err := pl.visit(s); err != nil {
			return false, err
		}
	}
	return true, nil
}

// visitAlias adds every module an alias names, as modprobe loads them all
// (crc32c: the SSE4.2 one and the generic one, whichever the CPU takes).
func (pl *planner) visitAlias(alias string) (bool, error) {
	pl.ix.scanAliases()
	targets := append([]string(nil), pl.ix.aliases[alias]...)
	sort.Strings(targets)
	any := false
	for _, t := range targets {
		if t == alias {
			continue
		}
		ok, err := pl.visit(t)
		if err != nil {
			return false, err
		}
		any = any || ok
	}
	return any, nil
}
