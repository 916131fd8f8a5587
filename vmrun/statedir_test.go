package vmrun

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestNames(t *testing.T) {
	for _, good := range []string{"a", "web-1", "0.test_x", strings.Repeat("a", 63)} {
		if err := CheckName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"", "A", "-a", ".a", "..", "a/b", "a b", strings.Repeat("a", 64), "ä"} {
		if err := CheckName(bad); err == nil || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	// The same file gives the same name; another directory another one.
	a, b := derivedName("/x/out/linux.qcow2"), derivedName("/y/out/linux.qcow2")
	if !regexp.MustCompile(`^linux-[0-9a-f]{8}$`).MatchString(a) || a == b || a != derivedName("/x/out/linux.qcow2") {
		t.Errorf("derived names %q %q", a, b)
	}
	for path, prefix := range map[string]string{"/o/My Disk.IMG": "my-disk-", "/o/.hidden": "hidden-", "/o/---": "vm-", "/o/" + strings.Repeat("x", 80) + ".img": strings.Repeat("x", 54) + "-"} {
		n := derivedName(path)
		if !strings.HasPrefix(n, prefix) || CheckName(n) != nil {
			t.Errorf("%s: %q", path, n)
		}
	}
}

// The state directory is made 0700 and used only when each directory from
// the user's state directory down is theirs, writable by no one else, and
// not a link.
func TestStateDirChecks(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	d, err := openVMDir("a", true)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, dir := range []string{"c2vm", "c2vm/vms", "c2vm/vms/a"} {
		if fi, err := os.Stat(filepath.Join(state, dir)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", dir, fi.Mode(), err)
		}
	}
	vms := filepath.Join(state, "c2vm/vms")
	elsewhere := t.TempDir()
	os.Symlink(elsewhere, filepath.Join(vms, "linked"))
	if _, err := openVMDir("linked", true); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a link was followed: %v", err)
	}
	os.Mkdir(filepath.Join(vms, "open"), 0o777)
	os.Chmod(filepath.Join(vms, "open"), 0o777)
	if _, err := openVMDir("open", true); err == nil || !strings.Contains(err.Error(), "others may write it") {
		t.Errorf("a world-writable VM directory was used: %v", err)
	}
	os.Chmod(filepath.Join(state, "c2vm"), 0o777)
	if _, err := openVMDir("a", false); err == nil || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("a world-writable c2vm directory was used: %v", err)
	}
	os.Chmod(filepath.Join(state, "c2vm"), 0o700)
	if os.Geteuid() == 0 {
		os.Chown(filepath.Join(vms, "a"), 65534, 65534)
		if _, err := openVMDir("a", false); err == nil || !strings.Contains(err.Error(), "owned by another user") {
			t.Errorf("another user's VM directory was used: %v", err)
		}
	}
	if _, err := openVMDir("none", false); err == nil || !strings.Contains(err.Error(), "c2vm ls") {
		t.Errorf("a missing VM: %v", err)
	}
	// A relative XDG_STATE_HOME is ignored, as the XDG spec says.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", "rel")
	if d, err := openVMDir("b", true); err != nil || d.path != filepath.Join(home, ".local/state/c2vm/vms/b") {
		t.Errorf("relative XDG_STATE_HOME: %v", err)
	} else {
		d.Close()
	}
}

// A VM's lock is held by its run, seen by others, and gone with it.
func TestVMLock(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	a, err := openVMDir("a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := openVMDir("a", false)
	defer b.Close()
	if ok, err := a.tryLock(); !ok || err != nil || !b.running() {
		t.Fatalf("lock: %v %v, seen %v", ok, err, b.running())
	}
	if ok, _ := b.tryLock(); ok {
		t.Error("locked twice")
	}
	a.lock.Close()
	a.lock = nil
	if b.running() {
		t.Error("still running after the lock was dropped")
	}
	if st, err := b.readState(); st != nil || err != nil {
		t.Errorf("state of a new VM: %v %v", st, err)
	}
	want := &vmState{Disk: "/d", Mode: modeOverlay, Identity: identity{Dev: 1, Ino: 2}}
	if err := b.writeState(want); err != nil {
		t.Fatal(err)
	}
	if st, err := a.readState(); err != nil || st.Disk != "/d" || st.Identity != want.Identity {
		t.Errorf("state read back: %+v %v", st, err)
	}
	if fi, _ := os.Stat(a.file(stateFile)); fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("state file mode %v", fi.Mode())
	}
}
