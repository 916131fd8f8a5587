package frontend

import (
	"context"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// appService adds c2vm-app.service to rootfs. When services enabled in the
// image already run the same program, only one side may run it: auto keeps
// the image's services and adds nothing, service adds c2vm-app.service and
// disables them. note puts the line that says which in the build log.
func appService(ctx context.Context, rootfs llb.State, cfg ocispecs.ImageConfig, t *target, app bootstrap.ServicePolicy, bo bootstrap.Options, note func(string)) (llb.State, error) {
	argv, err := t.program(ctx, cfg)
	if err != nil {
		return llb.State{}, err
	}
	twins := bootstrap.FindTwins(refTree{ctx, t.ref}, argv[0])
	if len(twins.Units) > 0 {
		note(twins.Note(app))
		if app != bootstrap.ServiceAlways {
			return rootfs, nil
		}
	}
	unit, err := bootstrap.AppUnit(cfg, argv)
	if err != nil {
		return llb.State{}, err
	}
	return bootstrap.AddAppService(rootfs, unit, twins, bo), nil
}
