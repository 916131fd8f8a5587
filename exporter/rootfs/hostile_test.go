package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/hostile"
	"github.com/c2vm/c2vm/internal/usererr"
)

// recTree reads a recorded stream for the hostile checks.
type recTree struct{ s *recSink }

func (r recTree) Exists(p string) bool      { return r.s.entries[p] != nil }
func (r recTree) SameFile(p, q string) bool { return r.s.links[p] == q || r.s.links[q] == p }

// Content is a file's logical content, holes read as zeros, as on a disk.
func (r recTree) Content(p string) (string, bool) {
	d, ok := r.s.content(p)
	if t, link := r.s.links[p]; link {
		p = t
	}
	e := r.s.entries[p]
	if !ok || e == nil || e.Data == nil {
		return d, ok
	}
	full := make([]byte, e.Size)
	for _, s := range e.Data {
		copy(full[s.Off:], d[:s.Len])
		d = d[s.Len:]
	}
	return string(full), true
}
func (r recTree) Xattrs(p string) []string {
	var n []string
	if e := r.s.entries[p]; e != nil {
		for _, x := range e.Xattrs {
			n = append(n, x.Name)
		}
	}
	return n
}

func TestHostileCorpus(t *testing.T) {
	for _, c := range hostile.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var layers [][]byte
			if c.Base != nil {
				layers = append(layers, c.Base.Bytes())
			}
			layers = append(layers, c.Top.Bytes())
			_, sink, err := streamAll(t, ociLayoutOf(t, layers...))
			if c.Err != "" {
				var ue *usererr.Error
				if err == nil || !strings.Contains(err.Error(), c.Err) || !errors.As(err, &ue) || ue.Fix == "" {
					t.Fatalf("want one clear error with %q, got %v", c.Err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.Check(recTree{sink}) {
				t.Error(p)
			}
		})
	}
}

// Go's own archive/tar test files, each used as a rootfs tar and as a
// layer: a tree or one clear error, quickly, never a panic.
func TestGoTarTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goTarTestdata(t), "*.tar"))
	if len(files) < 20 {
		t.Fatalf("archive/tar's test files: %d found", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			src, err := Open(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []Source{src, ociLayoutOf(t, b)} {
				_, _, err := streamAll(t, s)
				var ue *usererr.Error
				if err != nil && (!errors.As(err, &ue) || ue.Fix == "") {
					t.Errorf("%s: not a clear error: %v", s, err)
				}
				if err != nil {
					t.Logf("%s: %v", s, err)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
