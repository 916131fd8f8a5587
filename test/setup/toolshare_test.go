//go:build setup

package setup

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// requires is a go.mod's requirements, module path to version, as the go
// command reads them.
func requires(t *testing.T, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: go mod edit -json: %v", dir, err)
	}
	var mf struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mf); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range mf.Require {
		m[r.Path] = r.Version
	}
	return m
}

// TestToolModulesShareVersions keeps the test world's BuildKit and buildx
// on c2vm's versions of every module they have in common. hack/tools then
// builds them from the packages make test already compiled: on a new
// machine that is several minutes of its set-up.
func TestToolModulesShareVersions(t *testing.T) {
	ours := requires(t, repo(t))
	for _, name := range []string{"buildkit", "buildx"} {
		dir := filepath.Join(repo(t), "hack/toolmods", name)
		common := 0
		for path, v := range requires(t, dir) {
			want, ok := ours[path]
			if !ok {
				continue
			}
			common++
			if v != want {
				t.Errorf("hack/toolmods/%s requires %s %s, c2vm %s; fix: raise the older side to the newer version "+
					"(go get %s@VERSION and go mod tidy, in hack/toolmods/%s or in the repository's root), "+
					"then check that the tool's own module kept its version in hack/toolmods/%s/go.mod",
					name, path, v, want, path, name, name)
			}
		}
		if common < 30 {
			t.Errorf("hack/toolmods/%s has %d modules in common with c2vm's go.mod; want the BuildKit client's dependencies", name, common)
		}
	}
}
