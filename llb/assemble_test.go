package llb

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/internal/llbtest"
	bk "github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
)

func diskState(t *testing.T, formats string) bk.State {
	fs, err := exporter.ParseFormats(formats)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := bk.Image("docker.io/library/debian:bookworm").Run(bk.Shlex("true")).Root()
	tools := bk.Image("127.0.0.1:5000/c2vm:dev")
	return Disk(rootfs, tools, DiskOptions{Formats: fs[1:], Size: "4G", Firmware: "hybrid", Cmdline: "quiet", Epoch: "1700000000"})
}

func TestDiskAssembleStep(t *testing.T) {
	execs := llbtest.Execs(llbtest.Ops(t, diskState(t, "raw")))
	var asm *pb.ExecOp
	for _, e := range execs {
		if slices.Contains(e.Meta.Args, "assemble") {
			asm = e
		}
	}
	if asm == nil {
		t.Fatal("no c2vm assemble step")
	}
	want := "c2vm assemble --quiet -o /out --size 4G --firmware hybrid --cmdline quiet /rootfs"
	if got := strings.Join(asm.Meta.Args, " "); got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if !slices.Contains(asm.Meta.Env, "SOURCE_DATE_EPOCH=1700000000") {
		t.Errorf("env %v lacks SOURCE_DATE_EPOCH", asm.Meta.Env)
	}
	if asm.Network != pb.NetMode_NONE {
		t.Errorf("assembly has network %v", asm.Network)
	}
	var rootfs, out *pb.Mount
	for _, m := range asm.Mounts {
		switch m.Dest {
		case "/rootfs":
			rootfs = m
		case "/out":
			out = m
		}
	}
	if rootfs == nil || !rootfs.Readonly {
		t.Errorf("rootfs not mounted read-only: %+v", rootfs)
	}
	if out == nil || out.Input != -1 || out.Output < 0 {
		t.Errorf("/out is not a fresh scratch output: %+v", out)
	}
}

func TestNoPrivilegedStep(t *testing.T) {
	for _, e := range llbtest.Execs(llbtest.Ops(t, diskState(t, "qcow2,vhd"))) {
		if e.Security != pb.SecurityMode_SANDBOX {
			t.Errorf("step %v runs with security %v", e.Meta.Args, e.Security)
		}
	}
}

func TestConvertSteps(t *testing.T) {
	execs := llbtest.Execs(llbtest.Ops(t, diskState(t, "qcow2,vhd")))
	var conv []string
	for _, e := range execs {
		if e.Meta.Args[0] == "qemu-img" {
			conv = append(conv, strings.Join(e.Meta.Args, " "))
		}
	}
	slices.Sort(conv)
	want := []string{
		"qemu-img convert -q -f raw -O qcow2 /in/linux.img /out/linux.qcow2",
		"qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on /in/linux.img /out/linux.vhd",
	}
	if !slices.Equal(conv, want) {
		t.Errorf("conversions %q, want %q", conv, want)
	}
}

func TestDeterministic(t *testing.T) {
	if a, b := llbtest.Digest(t, diskState(t, "qcow2")), llbtest.Digest(t, diskState(t, "qcow2")); a != b {
		t.Errorf("same inputs, different LLB: %s %s", a, b)
	}
	if a, b := llbtest.Digest(t, diskState(t, "qcow2")), llbtest.Digest(t, diskState(t, "vdi")); a == b {
		t.Error("different formats, same LLB")
	}
}

func TestNoCache(t *testing.T) {
	fs, _ := exporter.ParseFormats("qcow2")
	ignored := func(noCache bool) int {
		st := Disk(bk.Image("docker.io/library/x"), bk.Image("c2vm"), DiskOptions{Formats: fs[1:], NoCache: noCache})
		def, err := st.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, md := range def.Metadata {
			if md.IgnoreCache {
				n++
			}
		}
		return n
	}
	if got := ignored(true); got != 2 {
		t.Errorf("--no-cache: %d steps ignore the cache, want assembly and conversion", got)
	}
	if got := ignored(false); got != 0 {
		t.Errorf("%d steps ignore the cache by default", got)
	}
}

// App mode: the image config reaches the assembly as a file on a read-only
// mount, never as arguments; the hostname is validated before it gets here.
func TestDiskAppMode(t *testing.T) {
	rootfs := bk.Image("docker.io/library/busybox:latest")
	st := Disk(rootfs, bk.Image("127.0.0.1:5000/c2vm:dev"), DiskOptions{Mode: "app", Hostname: "box", ImageConfig: []byte(`{"Cmd":["sh","-c","evil; $(x)"]}`)})
	ops := llbtest.Ops(t, st)
	var asm *pb.ExecOp
	for _, e := range llbtest.Execs(ops) {
		if slices.Contains(e.Meta.Args, "assemble") {
			asm = e
		}
	}
	args := strings.Join(asm.Meta.Args, " ")
	if args != "c2vm assemble --quiet -o /out --mode app --hostname box --image-config /c2vm-config/config.json /rootfs" {
		t.Errorf("args %q", args)
	}
	var cfg *pb.Mount
	for _, m := range asm.Mounts {
		if m.Dest == "/c2vm-config" {
			cfg = m
		}
	}
	if cfg == nil || !cfg.Readonly {
		t.Fatalf("config not mounted read-only: %+v", cfg)
	}
	var data string
	for _, a := range llbtest.FileActions(ops) {
		if mk := a.GetMkfile(); mk != nil && mk.Path == "/config.json" {
			data = string(mk.Data)
		}
	}
	if !strings.Contains(data, "evil; $(x)") || strings.Contains(args, "evil") {
		t.Errorf("config file %q, args %q", data, args)
	}
}
