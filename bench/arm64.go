package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// arm64 rows (-only arm64, make bench-arm64): assembling the arm64 Debian
// tree on this machine against the amd64 one, which shows that nothing of
// the assembly runs emulated, and arm64 boots under TCG through c2vm run.
func (b *bench) arm64(amd64Tree string) {
	o, err := exec.Command("./hack/fixture-tree", "arm64").Output()
	if err != nil {
		b.skip("arm64", "hack/fixture-tree arm64: "+err.Error())
		return
	}
	tree := strings.TrimSpace(string(o))
	w := b.work
	// Eleven runs each, in turns: one takes about a second here, where a
	// run's sync alone varies by more than the target allows.
	asm := func(src, arch string) job {
		return job{"rm -rf " + w + "/asm; sync", b.c2vm + " assemble -q --arch " + arch + " -o " + w + "/asm " + src + " >/dev/null && sync"}
	}
	s, errs := interleave(max(b.reps, 11), nil, asm(amd64Tree+".tar", "amd64"), asm(tree+".tar", "arm64"))
	os.RemoveAll(w + "/asm")
	if err := firstErr(errs); err != nil {
		b.skip("arm64 assembly", firstLine(err.Error()))
		return
	}
	cpu := func(x series) string { return "CPU " + secs(x.medianCPU()) }
	b.add(row{what: "c2vm assemble, amd64 Debian 12 tree (tar)", median: secs(s[0].median()), spread: s[0].spread(), rss: mib(s[0].peakRSS()),
		note: treeSize(amd64Tree) + "; " + cpu(s[0])})
	b.add(row{what: "c2vm assemble --arch arm64, arm64 Debian 12 tree (tar)", median: secs(s[1].median()), spread: s[1].spread(), rss: mib(s[1].peakRSS()),
		ratio: ratio(s[1].median(), s[0].median()), note: treeSize(tree) + "; " + cpu(s[1]) + " (" + ratio(s[1].medianCPU(), s[0].medianCPU()) +
			"); in turns with the row above; target ≤ 1.2× (no emulation)"})
	b.arm64Boots(tree)
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// treeSize is a tree's tar size, for the rows' notes.
func treeSize(tree string) string {
	fi, err := os.Stat(tree + ".tar")
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%.0f MB tar", float64(fi.Size())/1e6)
}

// arm64Boots times an arm64 system disk to its marker (multi-user) and an
// arm64 app disk to its program, through c2vm run on qemu-system-aarch64
// -M virt with AAVMF under TCG.
func (b *bench) arm64Boots(tree string) {
	env := []string{"XDG_STATE_HOME=" + filepath.Join(b.work, "state")}
	sys := filepath.Join(b.work, "arm64-sys")
	if _, err := runTimed(nil, b.c2vm+" assemble -q --arch arm64 -o "+sys+" "+tree+".tar >/dev/null"); err != nil {
		b.skip("arm64 boots", firstLine(err.Error()))
		return
	}
	var sysS series
	for range min(b.reps, 2) {
		t, err := runToMarker(b.c2vm, env, "C2VM-MARKER", "--snapshot", "--timeout", "1200s", "--expect", "C2VM-MARKER", "--quit-on-expect", filepath.Join(sys, "linux.img"))
		if err != nil {
			b.skip("arm64 system boot", err.Error())
			return
		}
		sysS = append(sysS, sample{wall: t[0]})
	}
	b.add(row{what: "arm64 system boot to its marker (multi-user) through c2vm run (virt, AAVMF, GRUB; TCG)", median: secs(sysS.median()), spread: sysS.spread(), note: "figure; amd64's rows above for scale"})
	app, err := b.arm64AppDisk(tree)
	if err != nil {
		b.skip("arm64 app boot", firstLine(err.Error()))
		return
	}
	var appS series
	for range min(b.reps, 2) {
		t, err := runToMarker(b.c2vm, env, "C2VM-MARKER", "--snapshot", "--timeout", "1200s", app)
		if err != nil {
			b.skip("arm64 app boot", err.Error())
			return
		}
		appS = append(appS, sample{wall: t[0]})
	}
	b.add(row{what: "arm64 app mode: boot to program through c2vm run (virt, AAVMF, GRUB; TCG)", median: secs(appS.median()), spread: appS.spread(), note: "figure; c2vm's arm64 kernel is the fixture's"})
}

// arm64AppDisk assembles a static arm64 Go program that prints the marker
// as an app disk, with the fixture's arm64 kernel and c2vm's arm64 init
// beside the binary under test, where assembly looks for it.
func (b *bench) arm64AppDisk(tree string) (string, error) {
	src := filepath.Join(b.work, "prog.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"C2VM-MARKER\") }\n"), 0o644); err != nil {
		return "", err
	}
	for _, c := range [][2]string{{filepath.Join(b.work, "prog"), src}, {filepath.Join(filepath.Dir(b.c2vm), "c2vm-arm64"), "./cmd/c2vm"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", c[0], c[1])
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", c[1], err, out)
		}
	}
	prog, err := os.ReadFile(filepath.Join(b.work, "prog"))
	if err != nil {
		return "", err
	}
	tarball := filepath.Join(b.work, "app-arm64.tar")
	if err := os.WriteFile(tarball, ocitest.NewTar().File("prog", string(prog), 0o755).Bytes(), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(b.work, "arm64-app")
	_, err = runTimed(nil, b.c2vm+" assemble -q --arch arm64 --kernel-dir "+tree+" --entrypoint /prog -o "+out+" "+tarball+" >/dev/null")
	return filepath.Join(out, "linux.img"), err
}
