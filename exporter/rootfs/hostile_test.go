package rootfs

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/ocitest"
	"github.com/c2vm/c2vm/internal/usererr"
)

// The breakout class (containerd's archive TestBreakouts, umoci
// CVE-2021-29136, containerd CVE-2021-32760): entries that try to reach
// outside the root through "..", absolute or relative symlinks, hardlinks
// and whiteouts. Nothing is ever written to the host here, so the question
// for each is only: does the flattened tree come out right (symlinks
// resolved inside the root, as a chroot would), or is there one clear
// error? Never a panic, a hang or an entry outside the tree.

type hostileCase struct {
	name  string
	base  *ocitest.Tar // lower layer (nil: none)
	top   *ocitest.Tar
	err   string                  // expected error text, or
	check func(*recSink) []string // problems with the tree
}

func etcBase() *ocitest.Tar {
	return ocitest.NewTar().Dir("etc", 0o755).File("etc/passwd", "inside", 0o644).Dir("dummy", 0o755)
}

// sameAs checks that p is the file q (a hardlink to it, or q itself).
func sameAs(p, q string) func(*recSink) []string {
	return func(s *recSink) []string {
		if t := s.links[p]; t != q {
			return []string{p + " is not a hardlink to " + q + ": " + t}
		}
		return nil
	}
}

func content(p, want string) func(*recSink) []string {
	return func(s *recSink) []string {
		if got, ok := s.content(p); !ok || got != want {
			return []string{p + " = " + got + ", want " + want}
		}
		return nil
	}
}

func all(fs ...func(*recSink) []string) func(*recSink) []string {
	return func(s *recSink) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f(s)...)
		}
		return out
	}
}

func absent(p string) func(*recSink) []string {
	return func(s *recSink) []string {
		if s.entries[p] != nil {
			return []string{p + " exists"}
		}
		return nil
	}
}

var hostileCases = []hostileCase{
	{name: "dotdot name", top: ocitest.NewTar().File("../escape", "x", 0o644), err: "climbs out of the root"},
	{name: "dotdot inside name", top: ocitest.NewTar().File("a/../../escape", "x", 0o644), err: "climbs out"},
	{name: "dotdot that stays inside", top: ocitest.NewTar().File("a/b/../c", "x", 0o644), check: all(content("a/c", "x"), absent("a/b"))},
	{name: "absolute name stays inside", top: ocitest.NewTar().File("/etc/abs", "x", 0o644), check: content("etc/abs", "x")},
	{name: "symlink absolute", base: etcBase(), top: ocitest.NewTar().Symlink("localetc", "/etc").File("localetc/unbroken", "u", 0o644),
		check: all(content("etc/unbroken", "u"), content("etc/passwd", "inside"))},
	{name: "symlink up and out", base: etcBase(), top: ocitest.NewTar().Symlink("localetc", "/dummy/../../../etc").File("localetc/unbroken", "u", 0o644),
		check: content("etc/unbroken", "u")},
	{name: "symlink chain absolute", base: etcBase(), top: ocitest.NewTar().Symlink("dummy/etc", "/etc").Symlink("localetc", "/dummy/etc").File("localetc/unbroken", "u", 0o644),
		check: content("etc/unbroken", "u")},
	{name: "symlink chain relative", base: etcBase(), top: ocitest.NewTar().Symlink("dummy/etc", "/etc").Symlink("localetc", "./dummy/etc").File("localetc/unbroken", "u", 0o644),
		check: content("etc/unbroken", "u")},
	{name: "symlink empties file", base: etcBase(), top: ocitest.NewTar().Symlink("localetc", "/etc").File("localetc/passwd", "", 0o644),
		check: content("etc/passwd", "")},
	{name: "hardlink through relative symlink", base: etcBase(), top: ocitest.NewTar().Dir("breakouts", 0o755).Symlink("breakouts/d1", "../../etc").Link("breakouts/mypasswd", "breakouts/d1/passwd"),
		check: sameAs("breakouts/mypasswd", "etc/passwd")},
	{name: "hardlink down and out", base: etcBase(), top: ocitest.NewTar().Dir("b", 0o755).Dir("down", 0o755).Symlink("b/d1", "../down/../../etc").Link("b/mypasswd", "b/d1/passwd"),
		check: sameAs("b/mypasswd", "etc/passwd")},
	{name: "hardlink through absolute symlink", base: etcBase(), top: ocitest.NewTar().Symlink("localetc", "/etc").Link("localpasswd", "localetc/passwd"),
		check: sameAs("localpasswd", "etc/passwd")},
	{name: "hardlink long relative", base: etcBase(), top: ocitest.NewTar().Symlink("localetc", "../../../../../../../etc").Link("localpasswd", "localetc/passwd"),
		check: sameAs("localpasswd", "etc/passwd")},
	{name: "hardlink direct dotdot", base: etcBase(), top: ocitest.NewTar().Link("localpasswd", "../../../../../etc/passwd"), err: "climbs out"},
	{name: "hardlink direct absolute", base: etcBase(), top: ocitest.NewTar().Link("localpasswd", "/etc/passwd"), check: sameAs("localpasswd", "etc/passwd")},
	{name: "hardlink to nothing", top: ocitest.NewTar().Link("l", "/etc/shadow"), err: "not a file in the image"},
	{name: "hardlink to a directory", base: etcBase(), top: ocitest.NewTar().Link("l", "etc"), err: "not a file in the image"},
	{name: "symlink named dotdot", base: etcBase(), top: ocitest.NewTar().Symlink("..", "/etc/"), err: "climbs out"},
	{name: "symlink replaces root", base: etcBase(), top: ocitest.NewTar().Symlink(".", "/etc"), err: "would replace the root directory"},
	{name: "file replaces root", top: ocitest.NewTar().Raw("./", '0', "", "x"), err: "would replace the root directory"},
	{name: "symlink parent relative", base: etcBase(), top: ocitest.NewTar().Symlink("localetc/sub/..", "/etc/").Link("localetc/localpasswd", "etc/passwd"),
		check: sameAs("etc/localpasswd", "etc/passwd")},
	{name: "directory over symlink", base: etcBase().Symlink("localetc", "/etc"), top: ocitest.NewTar().Dir("localetc", 0o755).File("localetc/passwd", "different", 0o644),
		check: all(content("localetc/passwd", "different"), content("etc/passwd", "inside"))},
	{name: "symlink over directory", base: etcBase().Dir("localetc", 0o755).File("localetc/old", "o", 0o644), top: ocitest.NewTar().Symlink("localetc", "/etc").Link("localetc/localpasswd", "etc/passwd"),
		check: all(sameAs("etc/localpasswd", "etc/passwd"), absent("localetc/old"))},
	{name: "whiteout dotdot", base: etcBase(), top: ocitest.NewTar().File(".wh...", "", 0o644), check: content("etc/passwd", "inside")},
	{name: "whiteout dotdot in subdir", base: etcBase(), top: ocitest.NewTar().File("etc/.wh...", "", 0o644), check: content("etc/passwd", "inside")},
	{name: "whiteout dot", base: etcBase(), top: ocitest.NewTar().File("etc/.wh..", "", 0o644), check: content("etc/passwd", "inside")},
	{name: "whiteout through symlink", base: etcBase().Symlink("localetc", "/etc"), top: ocitest.NewTar().File("localetc/.wh.passwd", "", 0o644), check: absent("etc/passwd")},
	{name: "whiteout of missing parent", base: etcBase(), top: ocitest.NewTar().File("nothere/.wh.x", "", 0o644), check: absent("nothere")},
	{name: "symlink loop", top: ocitest.NewTar().Symlink("a", "b").Symlink("b", "a").File("a/x", "x", 0o644), err: "too many levels of symbolic links"},
	{name: "symlink self loop", top: ocitest.NewTar().Symlink("a", "a").File("a/x", "x", 0o644), err: "too many levels"},
	{name: "link target with NUL", top: ocitest.NewTar().Entry(tar.Header{Name: "a", Typeflag: tar.TypeSymlink, PAXRecords: map[string]string{"linkpath": "b\x00c"}}, ""), err: "empty target"},
	{name: "long component", top: ocitest.NewTar().File(strings.Repeat("n", 256), "x", 0o644), err: "component of 256 bytes"},
	{name: "long path", top: ocitest.NewTar().File(strings.Repeat("d/", 2100)+"f", "x", 0o644), err: "more than Linux's 4096"},
	{name: "long symlink", top: ocitest.NewTar().Symlink("s", strings.Repeat("t", 4096)), err: "target of 4096 bytes"},
	{name: "empty symlink", top: ocitest.NewTar().Symlink("s", ""), err: "empty target"},
	{name: "unknown xattr namespace", top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.bogus.x": "v"}}, ""), err: "cannot hold"},
	{name: "huge xattr", top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.x": strings.Repeat("v", 70000)}}, ""), err: "bytes of extended attributes"},
	{name: "selinux label dropped", top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.security.selinux": "host_t"}}, ""),
		check: func(s *recSink) []string {
			if len(s.entries["f"].Xattrs) != 0 {
				return []string{"selinux label kept"}
			}
			return nil
		}},
	{name: "device numbers out of range", top: ocitest.NewTar().Entry(tar.Header{Name: "d", Typeflag: tar.TypeChar, Devmajor: 1 << 13}, ""), err: "beyond Linux's"},
	{name: "unknown type", top: ocitest.NewTar().Raw("x", 'Z', "", ""), err: "tar type"},
	{name: "entry under a file", base: etcBase(), top: ocitest.NewTar().File("etc/passwd/x", "x", 0o644), check: content("etc/passwd/x", "x")},
}

func TestHostileCorpus(t *testing.T) {
	for _, c := range hostileCases {
		t.Run(c.name, func(t *testing.T) {
			var layers [][]byte
			if c.base != nil {
				layers = append(layers, c.base.Bytes())
			}
			layers = append(layers, c.top.Bytes())
			_, sink, err := streamAll(t, ociLayoutOf(t, layers...))
			if c.err != "" {
				var ue *usererr.Error
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &ue) || ue.Fix == "" {
					t.Fatalf("want one clear error with %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.check(sink) {
				t.Error(p)
			}
		})
	}
}

// Go's own archive/tar test files, each used as a rootfs tar and as a
// layer: a tree or one clear error, quickly, never a panic.
func TestGoTarTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src/archive/tar/testdata/*.tar"))
	if len(files) < 20 {
		t.Skip("archive/tar testdata not found")
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

var _ = io.EOF
