// Package hostile is a corpus of hostile layers, shared by the tests of
// layer flattening (exporter/rootfs) and of the whole assembly (exporter):
// the breakout class of containerd's archive TestBreakouts, umoci
// CVE-2021-29136 and containerd CVE-2021-32760, rewritten for c2vm (entries
// that reach outside the root through "..", absolute or relative symlinks,
// hardlinks and whiteouts), plus names, links, xattrs and device numbers
// beyond Linux's limits. Nothing is ever extracted onto the host, so each
// case either gives the right tree — symlinks resolved inside the root, as
// a chroot would — or one clear error.
package hostile

import (
	"archive/tar"
	"strings"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// Case is one attack: a lower layer (nil: none) and the attacking layer,
// with either the error it must give or checks of the resulting tree.
type Case struct {
	Name  string
	Base  *ocitest.Tar
	Top   *ocitest.Tar
	Err   string              // expected error text, or
	Check func(Tree) []string // problems with the tree
}

// Tree is what a check reads: the flattened stream or the written disk.
type Tree interface {
	// Content is a regular file's bytes (following a hardlink).
	Content(p string) (string, bool)
	// Exists reports whether p is in the tree.
	Exists(p string) bool
	// SameFile reports whether p and q are one inode (hardlinked).
	SameFile(p, q string) bool
	// Xattrs lists p's xattr names.
	Xattrs(p string) []string
}

func etcBase() *ocitest.Tar {
	return ocitest.NewTar().Dir("etc", 0o755).File("etc/passwd", "inside", 0o644).Dir("dummy", 0o755)
}

// sameAs checks that p is the file q (a hardlink to it, or q itself).
func sameAs(p, q string) func(Tree) []string {
	return func(s Tree) []string {
		if !s.SameFile(p, q) {
			return []string{p + " is not a hardlink to " + q}
		}
		return nil
	}
}

func content(p, want string) func(Tree) []string {
	return func(s Tree) []string {
		if got, ok := s.Content(p); !ok || got != want {
			return []string{p + " = " + got + ", want " + want}
		}
		return nil
	}
}

func all(fs ...func(Tree) []string) func(Tree) []string {
	return func(s Tree) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f(s)...)
		}
		return out
	}
}

func absent(p string) func(Tree) []string {
	return func(s Tree) []string {
		if s.Exists(p) {
			return []string{p + " exists"}
		}
		return nil
	}
}

// Cases are the breakout class and the limits every populator must hold.
var Cases = []Case{
	{Name: "dotdot name", Top: ocitest.NewTar().File("../escape", "x", 0o644), Err: "climbs out of the root"},
	{Name: "dotdot inside name", Top: ocitest.NewTar().File("a/../../escape", "x", 0o644), Err: "climbs out"},
	{Name: "dotdot that stays inside", Top: ocitest.NewTar().File("a/b/../c", "x", 0o644), Check: all(content("a/c", "x"), absent("a/b"))},
	{Name: "absolute name stays inside", Top: ocitest.NewTar().File("/etc/abs", "x", 0o644), Check: content("etc/abs", "x")},
	{Name: "symlink absolute", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc", "/etc").File("localetc/unbroken", "u", 0o644),
		Check: all(content("etc/unbroken", "u"), content("etc/passwd", "inside"))},
	{Name: "symlink up and out", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc", "/dummy/../../../etc").File("localetc/unbroken", "u", 0o644),
		Check: content("etc/unbroken", "u")},
	{Name: "symlink chain absolute", Base: etcBase(), Top: ocitest.NewTar().Symlink("dummy/etc", "/etc").Symlink("localetc", "/dummy/etc").File("localetc/unbroken", "u", 0o644),
		Check: content("etc/unbroken", "u")},
	{Name: "symlink chain relative", Base: etcBase(), Top: ocitest.NewTar().Symlink("dummy/etc", "/etc").Symlink("localetc", "./dummy/etc").File("localetc/unbroken", "u", 0o644),
		Check: content("etc/unbroken", "u")},
	{Name: "symlink empties file", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc", "/etc").File("localetc/passwd", "", 0o644),
		Check: content("etc/passwd", "")},
	{Name: "hardlink through relative symlink", Base: etcBase(), Top: ocitest.NewTar().Dir("breakouts", 0o755).Symlink("breakouts/d1", "../../etc").Link("breakouts/mypasswd", "breakouts/d1/passwd"),
		Check: sameAs("breakouts/mypasswd", "etc/passwd")},
	{Name: "hardlink down and out", Base: etcBase(), Top: ocitest.NewTar().Dir("b", 0o755).Dir("down", 0o755).Symlink("b/d1", "../down/../../etc").Link("b/mypasswd", "b/d1/passwd"),
		Check: sameAs("b/mypasswd", "etc/passwd")},
	{Name: "hardlink through absolute symlink", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc", "/etc").Link("localpasswd", "localetc/passwd"),
		Check: sameAs("localpasswd", "etc/passwd")},
	{Name: "hardlink long relative", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc", "../../../../../../../etc").Link("localpasswd", "localetc/passwd"),
		Check: sameAs("localpasswd", "etc/passwd")},
	{Name: "hardlink direct dotdot", Base: etcBase(), Top: ocitest.NewTar().Link("localpasswd", "../../../../../etc/passwd"), Err: "climbs out"},
	{Name: "hardlink direct absolute", Base: etcBase(), Top: ocitest.NewTar().Link("localpasswd", "/etc/passwd"), Check: sameAs("localpasswd", "etc/passwd")},
	{Name: "hardlink to nothing", Top: ocitest.NewTar().Link("l", "/etc/shadow"), Err: "not a file in the image"},
	{Name: "hardlink to a directory", Base: etcBase(), Top: ocitest.NewTar().Link("l", "etc"), Err: "not a file in the image"},
	{Name: "symlink named dotdot", Base: etcBase(), Top: ocitest.NewTar().Symlink("..", "/etc/"), Err: "climbs out"},
	{Name: "symlink replaces root", Base: etcBase(), Top: ocitest.NewTar().Symlink(".", "/etc"), Err: "would replace the root directory"},
	{Name: "file replaces root", Top: ocitest.NewTar().Raw("./", '0', "", "x"), Err: "would replace the root directory"},
	{Name: "symlink parent relative", Base: etcBase(), Top: ocitest.NewTar().Symlink("localetc/sub/..", "/etc/").Link("localetc/localpasswd", "etc/passwd"),
		Check: sameAs("etc/localpasswd", "etc/passwd")},
	{Name: "directory over symlink", Base: etcBase().Symlink("localetc", "/etc"), Top: ocitest.NewTar().Dir("localetc", 0o755).File("localetc/passwd", "different", 0o644),
		Check: all(content("localetc/passwd", "different"), content("etc/passwd", "inside"))},
	{Name: "symlink over directory", Base: etcBase().Dir("localetc", 0o755).File("localetc/old", "o", 0o644), Top: ocitest.NewTar().Symlink("localetc", "/etc").Link("localetc/localpasswd", "etc/passwd"),
		Check: all(sameAs("etc/localpasswd", "etc/passwd"), absent("localetc/old"))},
	{Name: "whiteout dotdot", Base: etcBase(), Top: ocitest.NewTar().File(".wh...", "", 0o644), Check: content("etc/passwd", "inside")},
	{Name: "whiteout dotdot in subdir", Base: etcBase(), Top: ocitest.NewTar().File("etc/.wh...", "", 0o644), Check: content("etc/passwd", "inside")},
	{Name: "whiteout dot", Base: etcBase(), Top: ocitest.NewTar().File("etc/.wh..", "", 0o644), Check: content("etc/passwd", "inside")},
	{Name: "whiteout through symlink", Base: etcBase().Symlink("localetc", "/etc"), Top: ocitest.NewTar().File("localetc/.wh.passwd", "", 0o644), Check: absent("etc/passwd")},
	{Name: "whiteout of missing parent", Base: etcBase(), Top: ocitest.NewTar().File("nothere/.wh.x", "", 0o644), Check: absent("nothere")},
	{Name: "symlink loop", Top: ocitest.NewTar().Symlink("a", "b").Symlink("b", "a").File("a/x", "x", 0o644), Err: "too many levels of symbolic links"},
	{Name: "symlink self loop", Top: ocitest.NewTar().Symlink("a", "a").File("a/x", "x", 0o644), Err: "too many levels"},
	{Name: "link target with NUL", Top: ocitest.NewTar().Entry(tar.Header{Name: "a", Typeflag: tar.TypeSymlink, PAXRecords: map[string]string{"linkpath": "b\x00c"}}, ""), Err: "empty target"},
	{Name: "long component", Top: ocitest.NewTar().File(strings.Repeat("n", 256), "x", 0o644), Err: "component of 256 bytes"},
	{Name: "long path", Top: ocitest.NewTar().File(strings.Repeat("d/", 2100)+"f", "x", 0o644), Err: "more than Linux's 4096"},
	{Name: "long symlink", Top: ocitest.NewTar().Symlink("s", strings.Repeat("t", 4096)), Err: "target of 4096 bytes"},
	{Name: "empty symlink", Top: ocitest.NewTar().Symlink("s", ""), Err: "empty target"},
	{Name: "unknown xattr namespace", Top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.bogus.x": "v"}}, ""), Err: "cannot hold"},
	{Name: "huge xattr", Top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.x": strings.Repeat("v", 70000)}}, ""), Err: "bytes of extended attributes"},
	// The original hole: an xattr name that was spliced into a debugfs
	// script read a host file into the disk. It is a name like any other.
	{Name: "xattr name with debugfs options", Top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644,
		PAXRecords: map[string]string{"SCHILY.xattr.user.x -f /proc/self/environ": "v"}}, "data"),
		Check: func(s Tree) []string {
			if x := s.Xattrs("f"); len(x) != 1 || x[0] != "user.x -f /proc/self/environ" {
				return []string{"xattrs: " + strings.Join(x, ",")}
			}
			if c, _ := s.Content("f"); c != "data" {
				return []string{"content: " + c}
			}
			return nil
		}},
	{Name: "selinux label dropped", Top: ocitest.NewTar().Entry(tar.Header{Name: "f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.security.selinux": "host_t"}}, ""),
		Check: func(s Tree) []string {
			if len(s.Xattrs("f")) != 0 {
				return []string{"selinux label kept"}
			}
			return nil
		}},
	{Name: "device numbers out of range", Top: ocitest.NewTar().Entry(tar.Header{Name: "d", Typeflag: tar.TypeChar, Devmajor: 1 << 13}, ""), Err: "beyond Linux's"},
	{Name: "unknown type", Top: ocitest.NewTar().Raw("x", 'Z', "", ""), Err: "tar type"},
	{Name: "entry under a file", Base: etcBase(), Top: ocitest.NewTar().File("etc/passwd/x", "x", 0o644), Check: content("etc/passwd/x", "x")},
	oldGNUSmuggle(),
	pax1Smuggle(),
	pax01Smuggle(),
	longLinkChain(),
	linkWalkTooLong(),
}
