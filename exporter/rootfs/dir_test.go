package rootfs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/internal/ocitest"
)

func TestDirSource(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	xattrs := ocitest.TrickyDir(t, root, 64<<20)
	// Given through a symlink, the root is resolved.
	link := filepath.Join(t.TempDir(), "rootlink")
	os.Symlink(root, link)
	src, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	inv, s := mustStream(t, src)
	if e := s.entries["f"]; e.Mode != 0o4755 || (xattrs && (len(e.Xattrs) != 1 || string(e.Xattrs[0].Value) != "kept")) {
		t.Errorf("f: %+v", e)
	}
	if s.links["g"] != "f" || s.entries["s"].Link != "/nonexistent/outside" {
		t.Errorf("links %v, symlink %+v", s.links, s.entries["s"])
	}
	e := s.entries["sparse"]
	if e.Size != 64<<20+4 || len(e.Data) != 1 || e.DataBytes() > 1<<20 || !strings.HasSuffix(s.data["sparse"], "tail") {
		t.Errorf("sparse file: size %d, data %v", e.Size, e.Data)
	}
	if inv.Content > 1<<20 {
		t.Errorf("content %d counts the hole", inv.Content)
	}
}

func TestDirSourceSkipsSockets(t *testing.T) {
	root := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(root, "agent.sock"))
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	src, _ := Open(root)
	inv, s := mustStream(t, src)
	if s.entries["agent.sock"] != nil || len(inv.Notes) != 1 || !strings.Contains(inv.Notes[0], "agent.sock") {
		t.Errorf("socket: entries %v, notes %v", s.order, inv.Notes)
	}
}

// Between the scan and the stream the tree changes: a file becomes a FIFO
// (which would block a plain open), a symlink to a host file, or a
// directory a symlink. Each is an error; nothing from outside gets in.
func TestDirSourceRaces(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("HOST SECRET"), 0o644)
	for name, swap := range map[string]func(root string){
		"fifo": func(root string) {
			os.Remove(filepath.Join(root, "d/f"))
			unix.Mkfifo(filepath.Join(root, "d/f"), 0o644)
		},
		"symlink": func(root string) {
			os.Remove(filepath.Join(root, "d/f"))
			os.Symlink(secret, filepath.Join(root, "d/f"))
		},
		"dir symlink": func(root string) {
			os.RemoveAll(filepath.Join(root, "d"))
			os.Symlink(filepath.Dir(secret), filepath.Join(root, "d"))
		},
		"new file":   func(root string) { os.WriteFile(filepath.Join(root, "d/new"), []byte("x"), 0o644) },
		"grown file": func(root string) { os.WriteFile(filepath.Join(root, "d/f"), []byte("longer content"), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "d"), 0o755)
			os.WriteFile(filepath.Join(root, "d/f"), []byte("file"), 0o644)
			src, _ := Open(root)
			if _, err := src.Scan(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // a different mtime
			swap(root)
			sink := newRecSink(t)
			done := make(chan error, 1)
			go func() { done <- src.Stream(context.Background(), sink) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "changed while c2vm was reading") {
					t.Errorf("got %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("stream hangs")
			}
			for p, d := range sink.data {
				if strings.Contains(d, "HOST SECRET") {
					t.Errorf("%s carries the host's file", p)
				}
			}
		})
	}
}
