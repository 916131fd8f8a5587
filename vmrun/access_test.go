package vmrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/diskmeta"
)

func TestSSHForward(t *testing.T) {
	p := testPlan(t, Options{SSH: true})
	p.meta = &diskmeta.Meta{Mode: "system", SSHUser: "dev"}
	if err := p.planAccess(); err != nil {
		t.Fatal(err)
	}
	if len(p.forwards) != 1 || p.forwards[0].Guest != 22 || p.forwards[0].HostIP != "127.0.0.1" || p.sshLine != "ssh -p "+strconv.Itoa(p.forwards[0].Host)+" dev@127.0.0.1" {
		t.Errorf("forwards %+v, line %q", p.forwards, p.sshLine)
	}
	// A -p (or an exposed port) to 22 is used as it is.
	p = testPlan(t, Options{SSH: true})
	p.forwards = []Forward{{"0.0.0.0", 2222, 22}}
	if err := p.planAccess(); err != nil || len(p.forwards) != 1 || p.sshLine != "ssh -p 2222 root@127.0.0.1" {
		t.Errorf("forwards %+v, line %q, %v", p.forwards, p.sshLine, err)
	}
	// Without --ssh, a disk with keys gets a hint.
	p = testPlan(t, Options{})
	p.meta = &diskmeta.Meta{SSHUser: "root"}
	if err := p.planAccess(); err != nil || len(p.forwards) != 0 || len(p.notes) != 1 || !strings.Contains(p.notes[0], "add --ssh") {
		t.Errorf("notes %q, forwards %v, %v", p.notes, p.forwards, err)
	}
}

// The seed is a FAT image labelled CIDATA holding the user's data and a
// meta-data with an instance id from it; the user's file name reaches no
// tool. The ssh line names the first user the user-data makes, and a disk
// without cloud-init gets a note.
func TestCloudInitSeed(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mcopy", "minfo"} {
		needTool(t, tool)
	}
	ud := filepath.Join(t.TempDir(), "-n evil, name.yaml")
	data := "#cloud-config\nhostname: ci\nusers:\n  - name: ciuser\n    ssh_authorized_keys: [x]\n"
	os.WriteFile(ud, []byte(data), 0o644)
	work := t.TempDir()
	seed, err := makeSeed(context.Background(), work, ud)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	info, _ := exec.Command("minfo", "-i", seed, "::").CombinedOutput()
	if !strings.Contains(string(info), "CIDATA") {
		t.Errorf("label: %s", info)
	}
	for name, want := range map[string]string{"user-data": data, "meta-data": "instance-id: iid-c2vm-"} {
		cmd := exec.Command("mtype", "-i", seed, "::/"+name)
		cmd.Env = env
		got, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(got), want) {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	p := testPlan(t, Options{SSH: true, CloudInit: ud})
	p.meta = &diskmeta.Meta{Mode: "system"}
	if err := p.planAccess(); err != nil || !strings.HasSuffix(p.sshLine, " ciuser@127.0.0.1") || !slices.ContainsFunc(p.notes, func(n string) bool { return strings.Contains(n, "without C2VM_CLOUD_INIT=1") }) {
		t.Errorf("line %q notes %q %v", p.sshLine, p.notes, err)
	}
	p.seed = seed
	args, err := p.qemuArgs("tcg", "bios")
	if err != nil || !hasPair(args, "-drive", "file="+seed+",format=raw,if=virtio,readonly=on") {
		t.Errorf("seed drive missing: %q %v", args, err)
	}
}

// A c2vm.json from elsewhere must not put words into the printed ssh
// command: its sshUser is checked as a login name before anything runs.
func TestSSHUserFromMetaChecked(t *testing.T) {
	dir := t.TempDir()
	disk := mbrDisk(t, dir, 1<<20)
	meta := `{"mode":"system","firmware":"hybrid","sshUser":"x -oProxyCommand=touch${IFS}pwned -l root"}`
	os.WriteFile(filepath.Join(dir, "c2vm.json"), []byte(meta), 0o644)
	p, err := prepare(context.Background(), Options{Disk: disk, Accel: "tcg", SSH: true, DiskSize: "keep"})
	if p != nil {
		os.RemoveAll(p.work)
	}
	if err == nil || !strings.Contains(err.Error(), "is not a login name") || !strings.Contains(err.Error(), "fix: repair or remove") {
		t.Fatalf("want the sshUser refused, got %v", err)
	}
	for _, bad := range []string{`{"mode":"kernel"}`, `{"firmware":"coreboot"}`, `{"sshUser":"Root"}`} {
		os.WriteFile(filepath.Join(dir, "c2vm.json"), []byte(bad), 0o644)
		if _, err := diskmeta.ForDisk(disk); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	os.WriteFile(filepath.Join(dir, "c2vm.json"), []byte(`{"mode":"app","firmware":"uefi","sshUser":"vm-user_1"}`), 0o644)
	if m, err := diskmeta.ForDisk(disk); err != nil || m.SSHUser != "vm-user_1" {
		t.Errorf("a good file: %+v %v", m, err)
	}
}
