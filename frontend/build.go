// Package frontend is c2vm's BuildKit gateway frontend: it builds the user's
// Dockerfile with BuildKit's own dockerfile2llb (the same semantics users
// already have, options through dockerui), makes the result bootable with
// bootstrap, and returns the disk that llb assembles.
package frontend

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/moby/buildkit/frontend/subrequests/outline"
	"github.com/moby/buildkit/frontend/subrequests/targets"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Frontend builds disks. The zero value runs assembly in the frontend's own
// image, found with CurrentFrontend(); in-process callers, where there is no
// frontend image, name it with ToolsRef.
type Frontend struct {
	// ToolsRef is the c2vm image to run c2vm's steps in, resolved for the
	// builder's platform.
	ToolsRef string
}

// currentFrontend is what BuildKit's gRPC gateway client offers beyond
// client.Client.
type currentFrontend interface {
	CurrentFrontend() (*llb.State, error)
}

// tools is the c2vm image on the builder's platform: c2vm's own steps
// (guest configuration, assembly, conversions) run there whatever the
// target's platform, since they only read and write files and emulating
// them would only make them slower. An image source takes its platform
// from its own option, an exec from its state's.
func (f *Frontend) tools(c client.Client, build ocispecs.Platform) (llb.State, error) {
	if f.ToolsRef != "" {
		return llb.Image(f.ToolsRef, llb.Platform(build)).Platform(build), nil
	}
	if cf, ok := c.(currentFrontend); ok {
		st, err := cf.CurrentFrontend()
		if err == nil && st != nil {
			return st.Platform(build), nil
		}
	}
	return llb.State{}, fmt.Errorf("cannot find the c2vm image to assemble the disk in: run c2vm as a frontend image (# syntax=<c2vm image>) or use c2vm build")
}

// Build is the gateway BuildFunc.
func (f *Frontend) Build(ctx context.Context, c client.Client) (*client.Result, error) {
	bc, err := dockerui.NewClient(c)
	if err != nil {
		return nil, err
	}
	src, err := bc.ReadEntrypoint(ctx, "Dockerfile")
	if err != nil {
		return nil, err
	}
	convertOpt := dockerfile2llb.ConvertOpt{Config: bc.Config, Client: bc, SourceMap: src.SourceMap, MetaResolver: c}
	if res, ok, err := bc.HandleSubrequest(ctx, dockerui.RequestHandler{
		Outline: func(ctx context.Context) (*outline.Outline, error) {
			o, err := dockerfile2llb.Dockerfile2Outline(ctx, src.Data, convertOpt)
			if err != nil {
				return nil, err
			}
			addOptions(o)
			return o, nil
		},
		ListTargets: func(ctx context.Context) (*targets.List, error) {
			return dockerfile2llb.ListTargets(ctx, src.Data)
		},
		// --call check: BuildKit's own Dockerfile linter, as with the
		// stock frontend.
		Lint: func(ctx context.Context) (*lint.LintResults, error) {
			return dockerfile2llb.DockerfileLint(ctx, src.Data, convertOpt)
		},
	}); err != nil || ok {
		return res, err
	}
	if bad := unknownOptions(bc.BuildArgs); len(bad) > 0 {
		return nil, fmt.Errorf("unknown c2vm option %s: the options are %s, in capitals (see --call outline)", strings.Join(bad, ", "), optionNames())
	}
	set, err := parseOptions(bc.BuildArgs)
	if err != nil {
		return nil, err
	}
	// --no-cache without a stage list re-runs c2vm's steps too.
	set.disk.NoCache = bc.IsNoCache("")
	set.bootstrap.NoCache = set.disk.NoCache
	build := platforms.DefaultSpec()
	if len(bc.BuildPlatforms) > 0 {
		build = bc.BuildPlatforms[0]
	}
	tools, err := f.tools(c, build)
	if err != nil {
		return nil, err
	}
	c = cacheClient{Client: c, imports: bc.CacheImports}
	rb, err := bc.Build(ctx, func(ctx context.Context, platform *ocispecs.Platform, idx int) (*dockerui.BuildResult, error) {
		opt := convertOpt
		opt.BuildArgs = maps.Clone(opt.BuildArgs)
		opt.TargetPlatform = platform
		dfRes, err := dockerfile2llb.Dockerfile2LLB(ctx, src.Data, opt)
		if err != nil {
			return nil, err
		}
		p := platforms.DefaultSpec()
		if platform != nil {
			p = *platform
		}
		note := func(msg string) { src.Warn(ctx, msg, client.WarnOpts{}) }
		disk, err := diskFor(ctx, c, dfRes.State, dfRes.Image.Config.ImageConfig, tools, p, set, bc.CacheIDNamespace, note)
		if err != nil {
			return nil, err
		}
		ref, err := solve(ctx, c, disk, p)
		if err != nil {
			return nil, err
		}
		img, base := dfRes.Image, dfRes.BaseImage
		if set.disk.ContainerDisk() {
			img, base = containerDiskImage(p), nil
		}
		return &dockerui.BuildResult{Reference: ref, Image: img, BaseImage: base}, nil
	})
	if err != nil {
		return nil, err
	}
	return rb.Finalize()
}

// containerDiskImage is a KubeVirt containerDisk's image config: only the
// platform, no program (KubeVirt never runs one, it reads /disk) and none of
// the Dockerfile's settings, which belong to the guest, not to this image.
func containerDiskImage(p ocispecs.Platform) *dockerspec.DockerOCIImage {
	img := &dockerspec.DockerOCIImage{}
	img.OS, img.Architecture, img.Variant = "linux", p.Architecture, p.Variant
	img.RootFS.Type = "layers"
	return img
}

// cacheClient gives every solve the build's cache imports (--cache-from),
// not only the last: c2vm solves intermediate states (the base image, the
// kernel install, the guest configuration) to read them, and a builder
// with an empty local cache must find those in the imported cache too.
type cacheClient struct {
	client.Client
	imports []client.CacheOptionsEntry
}

func (c cacheClient) Solve(ctx context.Context, req client.SolveRequest) (*client.Result, error) {
	if len(req.CacheImports) == 0 {
		req.CacheImports = c.imports
	}
	return c.Client.Solve(ctx, req)
}

func solve(ctx context.Context, c client.Client, st llb.State, p ocispecs.Platform) (client.Reference, error) {
	def, err := st.Marshal(ctx, llb.Platform(p))
	if err != nil {
		return nil, err
	}
	r, err := c.Solve(ctx, client.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return nil, err
	}
	return r.SingleRef()
}

// evaluate builds a state now rather than when its result is first used.
func evaluate(ctx context.Context, c client.Client, st llb.State, p ocispecs.Platform) error {
	def, err := st.Marshal(ctx, llb.Platform(p))
	if err != nil {
		return err
	}
	_, err = c.Solve(ctx, client.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	return err
}

// BootstrapError says which bootstrap step failed on which distribution.
type BootstrapError struct {
	OS, Step string
	Err      error
}

var exitCode = regexp.MustCompile(`exit code: \d+`)

func (e *BootstrapError) Error() string {
	what := e.Err.Error()
	if m := exitCode.FindString(what); m != "" {
		what = "it ended with " + m + "; its output is in the build log above"
	}
	return fmt.Sprintf("making %s bootable failed in step %q: %s\n"+
		"  fix: check that the image's package sources work: apt-get update and apt-get install must succeed in a RUN step of the Dockerfile", e.OS, e.Step, what)
}

// BootstrapError has no Unwrap on purpose: BuildKit's gateway sends the
// innermost gRPC status of an error chain, which would drop this message.

func addOptions(o *outline.Outline) {
	for _, opt := range options {
		o.Args = append(o.Args, outline.Arg{Name: opt.Name, Value: opt.Default, Description: opt.Description})
	}
}

func optionNames() string {
	var n []string
	for _, o := range options {
		n = append(n, o.Name)
	}
	return strings.Join(n, ", ")
}
