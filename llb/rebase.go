package llb

import (
	"context"
	"fmt"
	"strings"

	bk "github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Putting the kernel beneath the user's layers. A Dockerfile's result is a
// chain of steps (RUN, COPY, …) on top of a base image, through any stage
// references. Installing the kernel on top of that chain re-runs the install
// after every edit; installing it on the base image, beneath the chain,
// lets BuildKit cache it across edits and gives the user's steps a system
// whose dpkg state already has the kernel. The chain is found in the
// marshalled definition and re-rooted: only the ops on it change, so other
// stages built from the same image do not get a kernel.

// Chain describes the root-filesystem chain of a state.
type Chain struct {
	def   *pb.Definition
	ops   map[digest.Digest]*pb.Op
	path  []link // from the terminal op down to the op consuming the base
	Base  string // the base image reference, as its source op names it
	Attrs map[string]string
}

// link is an op on the chain and which of its inputs continues it.
type link struct {
	dgst  digest.Digest
	input int
}

// FindChain follows st's root filesystem down to the image it starts
// from. ok is false when it does not start from an image (scratch, a
// local context, an op c2vm does not follow).
func FindChain(ctx context.Context, st bk.State, p ocispecs.Platform) (*Chain, bool, error) {
	d, err := st.Marshal(ctx, bk.Platform(p))
	if err != nil {
		return nil, false, err
	}
	c := &Chain{def: d.ToPB(), ops: map[digest.Digest]*pb.Op{}}
	var term digest.Digest
	for _, dt := range c.def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, false, err
		}
		term = digest.FromBytes(dt)
		c.ops[term] = &op
	}
	cur, in := term, 0
	for range 10000 {
		op := c.ops[cur]
		if op == nil || in < 0 || in >= len(op.Inputs) {
			return nil, false, nil
		}
		c.path = append(c.path, link{cur, in})
		next := digest.Digest(op.Inputs[in].Digest)
		nop := c.ops[next]
		if nop == nil {
			return nil, false, fmt.Errorf("definition lacks op %s", next)
		}
		if src := nop.GetSource(); src != nil {
			ref, ok := strings.CutPrefix(src.Identifier, "docker-image://")
			c.Base, c.Attrs = ref, src.Attrs
			return c, ok, nil
		}
		cur, in = next, rootInput(nop)
	}
	return nil, false, fmt.Errorf("chain too long")
}

// rootInput is the input of op that carries the root filesystem onward:
// an exec's "/" mount, a file op's first action's base, a merge's lowest
// layer. -1: none (c2vm does not follow).
func rootInput(op *pb.Op) int {
	switch x := op.Op.(type) {
	case *pb.Op_Exec:
		for _, m := range x.Exec.Mounts {
			if m.Dest == "/" {
				return int(m.Input)
			}
		}
	case *pb.Op_File:
		if len(x.File.Actions) > 0 {
			return int(x.File.Actions[0].Input)
		}
	case *pb.Op_Merge:
		if len(x.Merge.Inputs) > 0 {
			return int(x.Merge.Inputs[0].Input)
		}
	}
	return -1
}

// Rebase returns the chain's state with its base replaced by base: every op
// on the chain is rewritten to stand on it (and so gets a new digest);
// everything else in the definition is kept as it was.
func (c *Chain) Rebase(ctx context.Context, base bk.State, p ocispecs.Platform) (bk.State, error) {
	bd, err := base.Marshal(ctx, bk.Platform(p))
	if err != nil {
		return bk.State{}, err
	}
	out := &pb.Definition{Metadata: map[string]*pb.OpMetadata{}}
	seen := map[digest.Digest]bool{}
	add := func(dt []byte, md *pb.OpMetadata) digest.Digest {
		dg := digest.FromBytes(dt)
		if !seen[dg] {
			seen[dg] = true
			out.Def = append(out.Def, dt)
			if md != nil {
				out.Metadata[string(dg)] = md
			}
		}
		return dg
	}
	// The base's ops, without its terminal op; then the original's,
	// without its terminal op and the ops of the chain.
	bpb := bd.ToPB()
	var baseHead *pb.Input
	for i, dt := range bpb.Def {
		if i == len(bpb.Def)-1 {
			var t pb.Op
			if err := t.UnmarshalVT(dt); err != nil {
				return bk.State{}, err
			}
			baseHead = t.Inputs[0]
			break
		}
		add(dt, bpb.Metadata[string(digest.FromBytes(dt))])
	}
	onPath := map[digest.Digest]bool{}
	for _, l := range c.path {
		onPath[l.dgst] = true
	}
	for _, dt := range c.def.Def[:len(c.def.Def)-1] {
		if dg := digest.FromBytes(dt); !onPath[dg] {
			add(dt, c.def.Metadata[string(dg)])
		}
	}
	// Rewrite the chain bottom-up: each op now stands on the one below.
	renamed := map[digest.Digest]digest.Digest{}
	below := baseHead
	for i := len(c.path) - 1; i >= 0; i-- {
		l := c.path[i]
		op := c.ops[l.dgst].CloneVT()
		op.Inputs[l.input] = below
		dt, err := op.MarshalVT()
		if err != nil {
			return bk.State{}, err
		}
		if i == 0 {
			out.Def = append(out.Def, dt) // the terminal op
			break
		}
		dg := add(dt, c.def.Metadata[string(l.dgst)])
		renamed[l.dgst] = dg
		below = &pb.Input{Digest: string(dg), Index: c.ops[c.path[i-1].dgst].Inputs[c.path[i-1].input].Index}
	}
	out.Source = c.sources(renamed)
	dop, err := bk.NewDefinitionOp(out)
	if err != nil {
		return bk.State{}, err
	}
	return bk.NewState(dop.Output()), nil
}

// sources keeps the Dockerfile source map (errors name the line) for the
// rewritten ops under their new digests.
func (c *Chain) sources(renamed map[digest.Digest]digest.Digest) *pb.Source {
	src := c.def.Source
	if src == nil {
		return nil
	}
	out := &pb.Source{Infos: src.Infos, Locations: map[string]*pb.Locations{}}
	for dg, locs := range src.Locations {
		if n, ok := renamed[digest.Digest(dg)]; ok {
			dg = string(n)
		}
		out.Locations[dg] = locs
	}
	return out
}
