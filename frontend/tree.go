package frontend

import (
	"context"
	"os"
	"path"
	"strings"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/moby/buildkit/frontend/gateway/client"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// refTree reads a built filesystem through its BuildKit reference for
// bootstrap's checks of the image's units. BuildKit keeps every path it is
// given inside the reference's root.
type refTree struct {
	ctx context.Context
	ref client.Reference
}

func (r refTree) Lstat(p string) (bootstrap.Entry, bool) {
	dir, name := path.Split(p)
	// The name is a pattern to BuildKit: one with pattern characters could
	// match others, or nothing.
	if name == "" || strings.ContainsAny(name, `*?[]\`) {
		return bootstrap.Entry{}, false
	}
	list, err := r.ref.ReadDir(r.ctx, client.ReadDirRequest{Path: dir, IncludePattern: name})
	if err != nil {
		return bootstrap.Entry{}, false
	}
	for _, st := range list {
		if path.Base(st.Path) == name {
			return entry(st), true
		}
	}
	return bootstrap.Entry{}, false
}

func (r refTree) ReadDir(dir string) []bootstrap.Entry {
	list, err := r.ref.ReadDir(r.ctx, client.ReadDirRequest{Path: dir})
	if err != nil {
		return nil
	}
	out := make([]bootstrap.Entry, 0, len(list))
	for _, st := range list {
		out = append(out, entry(st))
	}
	return out
}

func (r refTree) ReadFile(p string, max int) ([]byte, bool) {
	b, err := r.ref.ReadFile(r.ctx, client.ReadRequest{Filename: p, Range: &client.FileRange{Length: max + 1}})
	return b, err == nil && len(b) <= max
}

func entry(st *fstypes.Stat) bootstrap.Entry {
	e := bootstrap.Entry{Name: path.Base(st.Path), Dir: st.IsDir()}
	if os.FileMode(st.Mode)&os.ModeSymlink != 0 {
		e.Link = st.Linkname
	}
	return e
}
