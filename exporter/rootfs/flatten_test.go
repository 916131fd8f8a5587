package rootfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// ociLayoutOf writes an OCI layout of the given layers and opens it.
func ociLayoutOf(t testing.TB, layers ...[]byte) Source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ocitest.WriteLayout(dir, "test", layers...); err != nil {
		t.Fatal(err)
	}
	src, err := Open("oci-layout:" + dir + ":test")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustStream(t *testing.T, src Source) (*Inventory, *recSink) {
	t.Helper()
	inv, sink, err := streamAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	return inv, sink
}

const capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func TestFlattenLayers(t *testing.T) {
	l0 := ocitest.NewTar().
		Dir("etc", 0o755).File("etc/a", "a0", 0o644).
		Dir("del", 0o755).File("del/keep", "k", 0o644).File("del/gone", "g", 0o644).
		Dir("opq", 0o755).File("opq/x", "x", 0o644).Dir("opq/sub", 0o755).File("opq/sub/y", "y", 0o644).
		Dir("re", 0o755).File("re/old", "old", 0o644).
		Dir("data", 0o755).File("data/target", "T0", 0o644).Link("data/link", "data/target").
		Dir("usr", 0o755).Dir("usr/bin", 0o755).
		Entry(tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "su").
		Entry(tar.Header{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capability}}, "ping").
		Entry(tar.Header{Name: "home/user/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000,
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "d"}}, "").
		Entry(tar.Header{Name: "home/user/file", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}, "mine").
		Dir("dev", 0o755).Entry(tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "").
		Symlink("etc/link", "/etc/a")
	l1 := ocitest.NewTar().
		File("etc/a", "a1", 0o644).
		File("del/.wh.gone", "", 0o644).
		File("opq/.wh..wh..opq", "", 0o644).File("opq/new", "n", 0o644).
		File(".wh.re", "", 0o644).Dir("re", 0o755).File("re/fresh", "f", 0o644).
		File("data/target", "T1", 0o644).Link("data/link2", "data/target")
	inv, s := mustStream(t, ociLayoutOf(t, l0.Bytes(), l1.Bytes()))

	for p, want := range map[string]string{"etc/a": "a1", "del/keep": "k", "opq/new": "n", "re/fresh": "f",
		"data/target": "T1", "data/link2": "T1", "data/link": "T0", "home/user/file": "mine"} {
		if got, _ := s.content(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"del/gone", "opq/x", "opq/sub", "opq/sub/y", "re/old", "home"} {
		if s.entries[p] != nil && p != "home" {
			t.Errorf("%s survived its whiteout", p)
		}
	}
	if s.entries["home"] == nil || s.entries["home"].Mode != 0o755 {
		t.Errorf("synthesised parent: %+v", s.entries["home"])
	}
	if s.links["data/link2"] != "data/target" || s.entries["data/link"].Kind != KindReg {
		t.Errorf("hardlinks: link2 -> %q, link is %v", s.links["data/link2"], s.entries["data/link"].Kind)
	}
	if e := s.entries["usr/bin/su"]; e.Mode != 0o4755 || e.UID != 0 {
		t.Errorf("setuid lost: %+v", e)
	}
	if e := s.entries["usr/bin/ping"]; len(e.Xattrs) != 1 || e.Xattrs[0].Name != "security.capability" || string(e.Xattrs[0].Value) != capability {
		t.Errorf("capability lost: %+v", e.Xattrs)
	}
	if e := s.entries["home/user"]; e.UID != 1000 || e.Mode != 0o700 || len(e.Xattrs) != 1 {
		t.Errorf("directory metadata and xattrs: %+v", e)
	}
	if e := s.entries["dev/null"]; e.Kind != KindChar || e.DevMajor != 1 || e.DevMinor != 3 {
		t.Errorf("device: %+v", e)
	}
	if e := s.entries["etc/link"]; e.Kind != KindSymlink || e.Link != "/etc/a" {
		t.Errorf("symlink: %+v", e)
	}
	// Every visible object once (a directory with xattrs twice).
	paths := map[string]bool{}
	for _, p := range s.order {
		paths[p] = true
	}
	if int64(len(paths)) != inv.Entries {
		t.Errorf("inventory counts %d entries, %d were sent", inv.Entries, len(paths))
	}
}

// An opaque marker hides lower layers only: what its own layer adds under
// the directory, before or after the marker, and the parents that layer
// made for it, stay (issue: "parents synthesised for that layer count as
// lower").
func TestOpaqueKeepsItsOwnLayer(t *testing.T) {
	l0 := ocitest.NewTar().Dir("a", 0o755).File("a/lower", "l", 0o644).Dir("a/b", 0o755).File("a/b/lower2", "l", 0o644)
	l1 := ocitest.NewTar().File("a/b/c/before", "1", 0o644).File("a/.wh..wh..opq", "", 0o644).File("a/after", "2", 0o644)
	_, s := mustStream(t, ociLayoutOf(t, l0.Bytes(), l1.Bytes()))
	for _, p := range []string{"a/b/c/before", "a/after"} {
		if _, ok := s.content(p); !ok {
			t.Errorf("%s lost to its own layer's opaque marker", p)
		}
	}
	for _, p := range []string{"a/lower", "a/b/lower2"} {
		if s.entries[p] != nil {
			t.Errorf("%s survived the opaque marker", p)
		}
	}
}

// A last layer with no entries (buildah, older docker commit) or only a PAX
// global header streams nothing and does not panic.
func TestEmptyAndHeaderOnlyLayers(t *testing.T) {
	empty := ocitest.NewTar().Bytes()
	var gb bytes.Buffer
	tw := tar.NewWriter(&gb)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	global := gb.Bytes()
	base := ocitest.NewTar().Dir("etc", 0o755).File("etc/a", "a", 0o644).Bytes()
	for name, layers := range map[string][][]byte{"empty top": {base, empty}, "global top": {base, global},
		"empty middle": {base, empty, global}, "only empty": {empty}} {
		t.Run(name, func(t *testing.T) {
			inv, s := mustStream(t, ociLayoutOf(t, layers...))
			if len(layers) > 1 {
				if got, _ := s.content("etc/a"); got != "a" {
					t.Errorf("etc/a = %q", got)
				}
			} else if inv.Entries != 1 {
				t.Errorf("%d entries", inv.Entries)
			}
		})
	}
}

func TestRootfsTarKeepsWhiteoutNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "root.tar")
	os.WriteFile(p, ocitest.NewTar().File("a/.wh.b", "literal", 0o644).File("a/b", "b", 0o644).Bytes(), 0o644)
	src, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	_, s := mustStream(t, src)
	if got, _ := s.content("a/.wh.b"); got != "literal" {
		t.Errorf("a plain rootfs tar interpreted a whiteout: %q", got)
	}
}

func TestUTF8AndParentsFromNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "root.tar")
	os.WriteFile(p, ocitest.NewTar().File("a/b/c/file", "deep", 0o640).Link("a/hard", "a/b/c/file").
		File("a/Größe-€", "utf8", 0o644).Symlink("a/link-€", "Größe-€").Bytes(), 0o644)
	src, _ := Open(p)
	_, s := mustStream(t, src)
	if got, _ := s.content("a/Größe-€"); got != "utf8" || s.entries["a/b"].Kind != KindDir || s.links["a/hard"] != "a/b/c/file" {
		t.Errorf("got %q, a/b %+v, links %v", got, s.entries["a/b"], s.links)
	}
	if !strings.HasPrefix(s.order[0], "") || s.order[0] != "" {
		t.Errorf("the root does not come first: %v", s.order[:3])
	}
}
