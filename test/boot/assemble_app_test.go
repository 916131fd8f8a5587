//go:build boot

package boot

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// TestAssembleAppMode builds an app-mode disk with the CLI, as a user
// outside the c2vm image would: a rootfs tar holding only a static program,
// the fixture's Debian kernel as --kernel-dir, the program from flags. c2vm
// run exits with the program's code.
func TestAssembleAppMode(t *testing.T) {
	dir, _ := fixture(t)
	work := t.TempDir()
	prog := filepath.Join(work, "prog")
	src := filepath.Join(work, "prog.go")
	os.WriteFile(src, []byte(`package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	wd, _ := os.Getwd()
	fmt.Printf("C2VM-APP args=%s x=%s uid=%d gid=%d cwd=%s host=%s\n", strings.Join(os.Args, ","), os.Getenv("X"), os.Getuid(), os.Getgid(), wd, os.Getenv("HOSTNAME"))
	os.Exit(7)
}
`), 0o644)
	if err := goBuildStatic(work, prog, src); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(workDir, "app.tar")
	if err := os.WriteFile(tarball, ocitest.NewTar().File("app/prog", string(b), 0o755).Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tarball, 0o644)
	out := outDir(t, "out")
	assemble(t, nil, "-o", out, "--kernel-dir", dir, "--entrypoint", `["/app/prog","a b"]`, "--cmd", "c",
		"--env", "X=1", "--workdir", "/w", "--user", "42:43", "--hostname", "box1", "--expose", "8080/tcp", tarball)
	meta, err := diskmeta.ForDisk(filepath.Join(out, "linux.img"))
	if err != nil || meta == nil || meta.Mode != "app" || len(meta.ExposedPorts) != 1 {
		t.Fatalf("c2vm.json: %+v %v", meta, err)
	}
	cmd := exec.Command(c2vm, "run", "--snapshot", "--no-expose", "--timeout", "300s", filepath.Join(out, "linux.img"))
	got, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("c2vm run: %v, want exit 7\n%s", err, tail(string(got), 3000))
	}
	if !strings.Contains(string(got), "C2VM-APP args=/app/prog,a b,c x=1 uid=42 gid=43 cwd=/w host=box1") {
		t.Errorf("the program saw:\n%s", tail(string(got), 2000))
	}
}
