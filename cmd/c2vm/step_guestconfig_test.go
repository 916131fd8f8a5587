package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuestConfigStatus checks the status file the frontend reads: the
// error of a failing configuration, written as a new file even when the
// image planted a link there (the link's target untouched), and no file
// at all after a success, whatever the image left at that path.
func TestGuestConfigStatus(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, ".c2vm-guest-config-error")
	outside := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, status); err != nil {
		t.Fatal(err)
	}
	// No /etc/passwd: root cannot be locked, the step reports it.
	if err, stderr := runC2VM(t, nil, "guest-config", "--root", root, "--status-file", status); err != nil {
		t.Fatalf("guest-config exits non-zero with --status-file: %v\n%s", err, stderr)
	}
	fi, err := os.Lstat(status)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("status is not a new regular file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(status); !strings.Contains(string(b), "neither /etc/shadow nor /etc/passwd") {
		t.Errorf("status holds %q", b)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("the planted link's target was written: %q", b)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o640))
	if err, stderr := runC2VM(t, nil, "guest-config", "--root", root, "--status-file", status); err != nil {
		t.Fatalf("guest-config: %v\n%s", err, stderr)
	}
	if _, err := os.Lstat(status); !os.IsNotExist(err) {
		t.Errorf("a successful step left a status file (%v): the frontend would fail the build", err)
	}
}
