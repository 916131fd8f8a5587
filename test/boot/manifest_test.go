//go:build boot

package boot

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fact is what the manifest compares of one entry.
type fact struct {
	kind, target, sum string
	mode              int64 // permission bits with setuid, setgid, sticky
	uid, gid          int
	size              int64
	mtimeNs           int64
	xattrs            map[string]string // name → hex of the value
}

func (f fact) String() string {
	var xs []string
	for k, v := range f.xattrs {
		xs = append(xs, k+"="+v)
	}
	sort.Strings(xs)
	return fmt.Sprintf("%s %04o %d:%d size=%d mtime=%d target=%q sha256=%.12s xattrs=%v", f.kind, f.mode, f.uid, f.gid, f.size, f.mtimeNs, f.target, f.sum, xs)
}

// TestFixtureManifest writes the debootstrap fixture and compares every
// entry of its tar (read with Go's archive/tar) with the written
// filesystem (read with e2fsprogs' debugfs): type, mode, owner, size,
// SHA-256 of the contents, link target, mtime to the nanosecond and every
// xattr, POSIX ACLs included.
func TestFixtureManifest(t *testing.T) {
	_, tarball := fixture(t)
	want := tarManifest(t, tarball)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, tarball)
	fs := rootFS(t, filepath.Join(out, "linux.img"))
	dump := t.TempDir()
	if o, err := exec.Command("debugfs", "-R", "rdump / "+dump, fs).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v %s", err, o)
	}
	got := diskManifest(t, fs, dump, want)
	bad := 0
	for _, name := range sortedKeys(want) {
		g, ok := got[name]
		if !ok {
			t.Errorf("/%s: missing on the disk", name)
		} else if g.String() != want[name].String() {
			t.Errorf("/%s:\n  tar:  %s\n  disk: %s", name, want[name], g)
		} else {
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("more than 20 differences")
		}
	}
	t.Logf("%d entries compared", len(want))
}

// rootFS is debugfs's name for a disk's root filesystem (its last
// partition).
func rootFS(t *testing.T, disk string) string {
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(out), `"start":`)
	var start int64
	fmt.Sscanf(string(out)[i+len(`"start":`):], "%d", &start)
	return fmt.Sprintf("%s?offset=%d", disk, start*512)
}

func tarManifest(t *testing.T, tarball string) map[string]fact {
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]fact{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Trim(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue
		}
		if h.Typeflag == tar.TypeLink {
			m[name] = m[strings.Trim(path.Clean("/"+h.Linkname), "/")]
			continue
		}
		e := fact{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtimeNs: h.ModTime.UnixNano(), xattrs: map[string]string{}}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				e.xattrs[x] = hex.EncodeToString([]byte(v))
			}
		}
		switch h.Typeflag {
		case tar.TypeReg:
			s := sha256.New()
			n, _ := io.Copy(s, tr)
			e.kind, e.size, e.sum = "regular", n, hex.EncodeToString(s.Sum(nil))
		case tar.TypeDir:
			e.kind = "directory"
		case tar.TypeSymlink:
			e.kind, e.target, e.size = "symlink", h.Linkname, int64(len(h.Linkname))
		case tar.TypeChar:
			e.kind = "character special"
		case tar.TypeBlock:
			e.kind = "block special"
		case tar.TypeFifo:
			e.kind = "FIFO"
		default:
			t.Fatalf("%s: tar type %c in the fixture", name, h.Typeflag)
		}
		m[name] = e
	}
	return m
}

// diskManifest stats every name of want with one debugfs run and hashes
// the contents rdump extracted.
func diskManifest(t *testing.T, fs, dump string, want map[string]fact) map[string]fact {
	var cmds strings.Builder
	for name := range want {
		if strings.ContainsAny(name, "\"\n") {
			t.Fatalf("%q: a name debugfs cannot be given", name)
		}
		fmt.Fprintf(&cmds, "stat \"/%s\"\n", name)
	}
	cf := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(cf, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("debugfs", "-f", cf, fs).Output()
	if err != nil {
		t.Fatalf("debugfs: %v", err)
	}
	got := map[string]fact{}
	for _, block := range strings.Split(string(out), "debugfs: stat \"/")[1:] {
		name, rest, _ := strings.Cut(block, "\"\n")
		e := parseStat(t, name, rest)
		local := filepath.Join(dump, name)
		switch e.kind {
		case "regular":
			b, err := os.ReadFile(local)
			if err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(b)
			e.sum = hex.EncodeToString(s[:])
		case "symlink":
			if e.target, err = os.Readlink(local); err != nil {
				t.Fatal(err)
			}
		case "directory":
			e.size = 0
		}
		got[name] = e
	}
	return got
}

// parseStat reads debugfs's stat of one inode.
func parseStat(t *testing.T, name, s string) fact {
	e := fact{xattrs: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(s))
	inXattrs := false
	for sc.Scan() {
		l := sc.Text()
		f := strings.Fields(l)
		switch {
		case inXattrs && strings.HasPrefix(l, "  "):
			n, v := parseXattr(t, name, l)
			e.xattrs[n] = v
			continue
		case strings.HasPrefix(l, "Inode:"):
			_, typ, _ := strings.Cut(l, "Type: ")
			typ, mode, _ := strings.Cut(typ, "Mode:")
			e.kind = strings.TrimSpace(typ)
			e.mode, _ = strconv.ParseInt(strings.Fields(mode)[0], 8, 64)
		case len(f) >= 8 && f[0] == "User:":
			e.uid, _ = strconv.Atoi(f[1])
			e.gid, _ = strconv.Atoi(f[3])
			e.size, _ = strconv.ParseInt(f[7], 10, 64)
		case len(f) >= 2 && f[0] == "mtime:":
			e.mtimeNs = parseTime(t, name, f[1])
		}
		inXattrs = l == "Extended attributes:"
	}
	if e.kind == "" {
		t.Fatalf("/%s: debugfs says %q", name, strings.TrimSpace(s))
	}
	return e
}

// parseTime reads 0xSECONDS:EXTRA: the extra field holds the nanoseconds
// above two epoch bits that extend the seconds beyond 2038.
func parseTime(t *testing.T, name, v string) int64 {
	secs, extra, _ := strings.Cut(strings.TrimPrefix(v, "0x"), ":")
	s, err1 := strconv.ParseUint(secs, 16, 32)
	x, err2 := strconv.ParseUint(extra, 16, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("/%s: mtime %q", name, v)
	}
	return (int64(int32(s))+int64(x&3)<<32)*1e9 + int64(x>>2)
}

// parseXattr reads "  name (len) = 01 02 …" (or a quoted string) and
// returns the value as the VFS sees it, in hex: ext4 keeps POSIX ACLs in a
// format of its own, converted here back to the VFS's.
func parseXattr(t *testing.T, name, l string) (string, string) {
	n, v, _ := strings.Cut(strings.TrimSpace(l), " = ")
	n, size, _ := strings.Cut(n, " (")
	var raw []byte
	if strings.HasPrefix(v, "\"") {
		u, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("/%s: xattr %s value %s", name, n, v)
		}
		raw = []byte(u)
	} else {
		b, err := hex.DecodeString(strings.ReplaceAll(v, " ", ""))
		if err != nil {
			t.Fatalf("/%s: xattr %s value %s", name, n, v)
		}
		raw = b
	}
	if want, _ := strconv.Atoi(strings.TrimSuffix(size, ")")); want != len(raw) {
		t.Fatalf("/%s: xattr %s of %d bytes printed as %d", name, n, want, len(raw))
	}
	if strings.HasPrefix(n, "system.posix_acl_") {
		raw = aclToVFS(t, name, raw)
	}
	return n, hex.EncodeToString(raw)
}

// aclToVFS converts ext4's on-disk ACL (version 1; entries of 4 bytes, 8
// for a named user or group) to the VFS xattr format (version 2; every
// entry 8 bytes, id 0xffffffff where none applies).
func aclToVFS(t *testing.T, name string, b []byte) []byte {
	le := binary.LittleEndian
	if len(b) < 4 || le.Uint32(b) != 1 {
		t.Fatalf("/%s: ACL header %x", name, b)
	}
	out := le.AppendUint32(nil, 2)
	for b = b[4:]; len(b) > 0; {
		if len(b) < 4 {
			t.Fatalf("/%s: short ACL entry", name)
		}
		tag, perm := le.Uint16(b), le.Uint16(b[2:])
		id := uint32(0xffffffff)
		n := 4
		if tag == 2 || tag == 8 { // ACL_USER, ACL_GROUP
			if len(b) < 8 {
				t.Fatalf("/%s: short ACL entry", name)
			}
			id, n = le.Uint32(b[4:]), 8
		}
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		out = le.AppendUint32(out, id)
		b = b[n:]
	}
	return out
}

func sortedKeys(m map[string]fact) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
