//go:build world

package world

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// crane runs the test world's crane against its registry.
func crane(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cache := os.Getenv("C2VM_CACHE")
	if cache == "" {
		cache = "/var/cache/c2vm"
	}
	return exec.Command(filepath.Join(cache, "bin/crane"), append(args, "--insecure")...)
}

// TestFormatContainerDisk pushes a KubeVirt containerDisk to the test
// world's registry, pulls it back with crane and checks what KubeVirt
// reads: /disk/*.qcow2 owned by its qemu user (107:107) and nothing to run
// in the image config; the disk boots. With a local output the same files
// land in the directory.
func TestFormatContainerDisk(t *testing.T) {
	dir := exampleContext(t, "debian", "")
	ref := env(t, "C2VM_REGISTRY") + "/c2vm-test/containerdisk:t"
	args := []string{"--build-arg", "BUILDKIT_SYNTAX=" + env(t, "C2VM_IMAGE"), "--build-arg", "C2VM_FORMAT=containerdisk",
		"--build-arg", "C2VM_HOSTNAME=c2vm-kubevirt"}
	buildx(t, append(args, "--output", "type=registry,name="+ref+",registry.insecure=true", dir)...)

	cfgJSON, err := crane(t, "config", ref).Output()
	must(t, err)
	var cfg struct {
		OS, Architecture string
		Config           struct{ Entrypoint, Cmd, Env []string }
	}
	must(t, json.Unmarshal(cfgJSON, &cfg))
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Config.Entrypoint != nil || cfg.Config.Cmd != nil || cfg.Config.Env != nil {
		t.Errorf("image config is not the minimal one: %s", cfgJSON)
	}

	disk := filepath.Join(t.TempDir(), "linux.qcow2")
	files := exportImage(t, ref, disk)
	if got := strings.Join(files, " "); got != "c2vm.json disk 107:107 disk/linux.qcow2 107:107" {
		t.Errorf("image holds %q, want c2vm.json and /disk/linux.qcow2 (with /disk) owned 107:107", got)
	}
	checkGuest(t, boot(t, disk, "bios"), "c2vm-kubevirt")

	out := t.TempDir()
	buildx(t, append(args, "-o", out, dir)...)
	if _, err := os.Stat(filepath.Join(out, "disk/linux.qcow2")); err != nil {
		t.Errorf("local output: %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("local output holds %d entries, want c2vm.json and disk/", len(entries))
	}
}

// exportImage reads the image's flattened filesystem with crane export,
// writes its qcow2 to disk and lists its entries, with the owner of those
// under disk/.
func exportImage(t *testing.T, ref, disk string) []string {
	t.Helper()
	cmd := crane(t, "export", ref, "-")
	r, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	var files []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if strings.HasPrefix(name, "disk") {
			name += " " + ownerOf(h)
		}
		files = append(files, name)
		if strings.HasSuffix(h.Name, ".qcow2") {
			f, err := os.Create(disk)
			must(t, err)
			_, err = io.Copy(f, tr)
			must(t, err)
			must(t, f.Close())
		}
	}
	must(t, cmd.Wait())
	slices.Sort(files)
	return files
}

func ownerOf(h *tar.Header) string { return fmt.Sprintf("%d:%d", h.Uid, h.Gid) }
