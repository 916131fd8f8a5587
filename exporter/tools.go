package exporter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/c2vm/c2vm/internal/hosttools"
)

// lookTool and run are the shared tool helpers; a missing tool is reported
// with its Debian package.
var (
	lookTool = hosttools.Look
	run      = hosttools.Run
)

// MissingToolError names a tool that is not installed and its package.
type MissingToolError = hosttools.MissingToolError

// GRUB's platform module directories, with their packages.
var grubPlatforms = map[string]string{
	"i386-pc":    "grub-pc-bin",
	"x86_64-efi": "grub-efi-amd64-bin",
}

// grubDir returns the module directory of a GRUB platform.
func grubDir(platform string) (string, error) {
	d := filepath.Join(os.Getenv("C2VM_GRUB_LIB"), platform)
	if os.Getenv("C2VM_GRUB_LIB") == "" {
		d = filepath.Join("/usr/lib/grub", platform)
	}
	if _, err := os.Stat(filepath.Join(d, "kernel.img")); err != nil {
		return "", &MissingToolError{Tool: "GRUB for " + platform, Package: grubPlatforms[platform]}
	}
	return d, nil
}

var mke2fsVersion = regexp.MustCompile(`mke2fs (\d+)\.(\d+)(?:\.(\d+))?`)

// checkMke2fs makes sure mke2fs reads tar input (-d from a tarball: 1.47.1).
func checkMke2fs(ctx context.Context) error {
	p, err := lookTool("mke2fs")
	if err != nil {
		return err
	}
	out, _ := exec.CommandContext(ctx, p, "-V").CombinedOutput()
	m := mke2fsVersion.FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Errorf("cannot tell the version of %s: %s", p, out)
	}
	v := [3]int{}
	for i := range 3 {
		fmt.Sscan(m[i+1], &v[i])
	}
	if v[0] > 1 || v[0] == 1 && (v[1] > 47 || v[1] == 47 && v[2] >= 1) {
		return nil
	}
	return fmt.Errorf("%s is version %s.%s.%s; c2vm needs e2fsprogs 1.47.1 or newer to build ext4 from a tar stream without root\n  fix: install e2fsprogs from bookworm-backports or Debian 13 (apt-get install -t bookworm-backports e2fsprogs libarchive13), or run c2vm from its image", p, m[1], m[2], m[3])
}

// runMke2fs runs mke2fs reading the tar stream from the pipe stdin, whose
// read end this process gives up once mke2fs has it: then the writer gets
// EPIPE instead of blocking if mke2fs stops early.
func runMke2fs(ctx context.Context, stdin *os.File, args []string) error {
	p, err := lookTool("mke2fs")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Stdin = stdin
	// libarchive converts names through the locale: with plain C (as in a
	// build container) a UTF-8 file name fails the whole filesystem.
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	stdin.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("mke2fs: %v\n%s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// setXattrs writes the xattrs mke2fs's tar reader skips, in one debugfs run.
func setXattrs(ctx context.Context, work, fsPath string, xs []xattr) error {
	if len(xs) == 0 {
		return nil
	}
	var script strings.Builder
	for i, x := range xs {
		if strings.ContainsAny(x.path+x.name, "\"\n") {
			return &InputError{Msg: fmt.Sprintf("cannot carry xattr %q of %s: its name has a quote or newline", x.name, x.path), Fix: "remove the xattr from the image"}
		}
		vf := filepath.Join(work, fmt.Sprintf("xattr-%d", i))
		if err := os.WriteFile(vf, []byte(x.value), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&script, "ea_set -f %s \"%s\" %s\n", vf, x.path, x.name)
	}
	sf := filepath.Join(work, "xattrs.debugfs")
	if err := os.WriteFile(sf, []byte(script.String()), 0o600); err != nil {
		return err
	}
	p, err := lookTool("debugfs")
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, p, "-w", "-f", sf, fsPath).CombinedOutput()
	// debugfs exits 0 even when a request fails; its complaints name the
	// request.
	if err != nil || strings.Contains(string(out), "ea_set:") {
		return fmt.Errorf("setting xattrs with debugfs: %v\n%s", err, out)
	}
	return nil
}
