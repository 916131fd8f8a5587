package rootfs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
)

// recSink records what a source streams and checks the Sink contract:
// parents before children, hardlink targets before links, exact data.
type recSink struct {
	t       testing.TB
	order   []string
	entries map[string]*Entry
	data    map[string]string
	links   map[string]string
}

func newRecSink(t testing.TB) *recSink {
	return &recSink{t: t, entries: map[string]*Entry{}, data: map[string]string{}, links: map[string]string{}}
}

func (s *recSink) Add(e *Entry, r io.Reader) error {
	if e.Path != "" {
		i := strings.LastIndexByte(e.Path, '/')
		parent := ""
		if i >= 0 {
			parent = e.Path[:i]
		}
		if p := s.entries[parent]; p == nil || p.Kind != KindDir {
			return fmt.Errorf("%s before its parent directory", e.Path)
		}
	}
	if old := s.entries[e.Path]; old != nil && !(old.Kind == KindDir && e.Kind == KindDir) {
		return fmt.Errorf("%s sent twice", e.Path)
	}
	switch e.Kind {
	case KindHardlink:
		if t := s.entries[e.Link]; t == nil || t.Kind == KindDir || t.Kind == KindHardlink {
			return fmt.Errorf("hardlink %s before its target %s", e.Path, e.Link)
		}
		s.links[e.Path] = e.Link
	case KindReg:
		if r == nil {
			return fmt.Errorf("%s: no data reader", e.Path)
		}
		b, err := io.ReadAll(io.LimitReader(r, e.DataBytes()+1))
		if err != nil {
			return err
		}
		if int64(len(b)) != e.DataBytes() {
			return fmt.Errorf("%s: %d bytes of data, want %d", e.Path, len(b), e.DataBytes())
		}
		s.data[e.Path] = string(b)
	default:
		if r != nil {
			return fmt.Errorf("%s: data reader for a %s", e.Path, e.Kind)
		}
	}
	cp := *e
	s.entries[e.Path] = &cp
	s.order = append(s.order, e.Path)
	return nil
}

// content follows hardlinks to a file's data.
func (s *recSink) content(p string) (string, bool) {
	if t, ok := s.links[p]; ok {
		p = t
	}
	d, ok := s.data[p]
	return d, ok
}

func streamAll(t testing.TB, src Source) (*Inventory, *recSink, error) {
	inv, err := src.Scan(context.Background())
	if err != nil {
		return nil, nil, err
	}
	sink := newRecSink(t)
	return inv, sink, src.Stream(context.Background(), sink)
}
