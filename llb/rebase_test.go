package llb

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/llbtest"
	bk "github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// opsByArg indexes a state's exec ops by their command line and returns
// the exec whose rootfs each one stands on (by command line too).
func execGraph(t *testing.T, st bk.State) map[string]string {
	ops := llbtest.Ops(t, st)
	byDigest := map[digest.Digest]*pb.Op{}
	def, _ := st.Marshal(context.Background(), bk.Platform(amd64))
	for _, dt := range def.Def {
		var op pb.Op
		op.UnmarshalVT(dt)
		byDigest[digest.FromBytes(dt)] = &op
	}
	_ = ops
	below := map[string]string{}
	for _, op := range byDigest {
		e := op.GetExec()
		if e == nil {
			continue
		}
		for _, m := range e.Mounts {
			if m.Dest != "/" {
				continue
			}
			in := byDigest[digest.Digest(op.Inputs[m.Input].Digest)]
			name := "?"
			switch {
			case in.GetExec() != nil:
				name = strings.Join(in.GetExec().Meta.Args, " ")
			case in.GetSource() != nil:
				name = in.GetSource().Identifier
			case in.GetFile() != nil:
				name = "file"
			}
			below[strings.Join(e.Meta.Args, " ")] = name
		}
	}
	return below
}

func TestRebaseChain(t *testing.T) {
	ctx := context.Background()
	base := bk.Image("docker.io/library/debian:bookworm")
	other := base.Run(bk.Shlex("other stage")).Root()
	user := base.Run(bk.Shlex("user step one")).Root().
		File(bk.Mkfile("/x", 0o644, []byte("y"))).
		Run(bk.Shlex("user step two")).Root().
		File(bk.Copy(other, "/o", "/o"))
	c, ok, err := FindChain(ctx, user, amd64)
	if err != nil || !ok || c.Base != "docker.io/library/debian:bookworm" {
		t.Fatalf("chain %+v %v %v", c, ok, err)
	}
	kernel := bk.Image(c.Base).Run(bk.Shlex("install kernel")).Root()
	re, err := c.Rebase(ctx, kernel, amd64)
	if err != nil {
		t.Fatal(err)
	}
	g := execGraph(t, re)
	if g["user step one"] != "install kernel" || g["install kernel"] != "docker-image://docker.io/library/debian:bookworm" {
		t.Errorf("the chain does not stand on the kernel: %v", g)
	}
	if g["user step two"] != "file" {
		t.Errorf("the chain's order changed: %v", g)
	}
	if g["other stage"] != "docker-image://docker.io/library/debian:bookworm" {
		t.Errorf("another stage of the same base got the kernel: %v", g)
	}
	// Deterministic: the same input gives the same definition.
	re2, _ := c.Rebase(ctx, kernel, amd64)
	if llbtest.Digest(t, re) != llbtest.Digest(t, re2) {
		t.Error("rebase is not deterministic")
	}
	// Exactly one install op.
	var installs int
	for _, e := range llbtest.Execs(llbtest.Ops(t, re)) {
		if slices.Equal(e.Meta.Args, []string{"install", "kernel"}) {
			installs++
		}
	}
	if installs != 1 {
		t.Errorf("%d install ops", installs)
	}
}

func TestFindChainNotAnImage(t *testing.T) {
	st := bk.Scratch().File(bk.Mkfile("/x", 0o644, nil))
	if _, ok, err := FindChain(context.Background(), st, amd64); ok || err != nil {
		t.Errorf("scratch chain: %v %v", ok, err)
	}
	local := bk.Local("context").File(bk.Mkfile("/x", 0o644, nil))
	if _, ok, _ := FindChain(context.Background(), local, amd64); ok {
		t.Error("a local context is not a base image")
	}
}
