// Package llbtest marshals LLB states and finds their ops, for unit tests
// that check definitions without a BuildKit daemon.
package llbtest

import (
	"context"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// Ops marshals st and returns its ops with their digests, in definition order.
func Ops(t *testing.T, st llb.State) []*pb.Op {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ops []*pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, &op)
	}
	return ops
}

// Digest is the definition's head digest: equal for equal LLB.
func Digest(t *testing.T, st llb.State) string {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, err := def.Head()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// Execs returns the exec ops.
func Execs(ops []*pb.Op) []*pb.ExecOp {
	var out []*pb.ExecOp
	for _, op := range ops {
		if e := op.GetExec(); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// FileActions returns every file action.
func FileActions(ops []*pb.Op) []*pb.FileAction {
	var out []*pb.FileAction
	for _, op := range ops {
		if f := op.GetFile(); f != nil {
			out = append(out, f.Actions...)
		}
	}
	return out
}

// IgnoreCache returns the exec ops whose metadata says never to use the
// cache for them.
func IgnoreCache(t *testing.T, st llb.State) []*pb.ExecOp {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*pb.ExecOp
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil {
			t.Fatal(err)
		}
		if md, ok := def.Metadata[digest.FromBytes(dt)]; ok && md.IgnoreCache && op.GetExec() != nil {
			out = append(out, op.GetExec())
		}
	}
	return out
}
