package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/frontend"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/moby/buildkit/client"
	bk "github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

func buildCmd() *cobra.Command {
	var file, out, target, platform, tools, progress string
	var buildArgs, secrets, contexts []string
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build a Dockerfile into a VM disk through BuildKit, with the frontend in-process",
		Long: `Build a Dockerfile into DIR/linux.img against the BuildKit daemon at
BUILDKIT_HOST, running the c2vm frontend in this process: no published
frontend image is needed, only the c2vm image for the assembly step
(--tools-image or C2VM_IMAGE). Options are the same C2VM_ build args the
frontend takes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			addr := os.Getenv("BUILDKIT_HOST")
			if addr == "" {
				return usererr.New("BUILDKIT_HOST is not set", "export BUILDKIT_HOST=unix:///path/to/buildkitd.sock (hack/testenv up prints it)")
			}
			if tools == "" {
				tools = os.Getenv("C2VM_IMAGE")
			}
			if tools == "" {
				return usererr.New("no c2vm image for the assembly step", "pass --tools-image REF or export C2VM_IMAGE=REF")
			}
			if file == "" {
				file = filepath.Join(args[0], "Dockerfile")
			}
			attrs := map[string]string{"filename": filepath.Base(file)}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					v = os.Getenv(k)
				}
				attrs["build-arg:"+k] = v
			}
			if target != "" {
				attrs["target"] = target
			}
			if platform != "" {
				attrs["platform"] = platform
			}
			mounts := map[string]fsutil.FS{}
			for name, dir := range map[string]string{"context": args[0], "dockerfile": filepath.Dir(file)} {
				fs, err := fsutil.NewFS(dir)
				if err != nil {
					return fmt.Errorf("%s: %w", dir, err)
				}
				mounts[name] = fs
			}
			for _, c := range contexts {
				name, dir, ok := strings.Cut(c, "=")
				if !ok {
					return fmt.Errorf("--build-context %q: use NAME=DIR", c)
				}
				fs, err := fsutil.NewFS(dir)
				if err != nil {
					return fmt.Errorf("%s: %w", dir, err)
				}
				mounts[name] = fs
				attrs["context:"+name] = "local:" + name
			}
			var attach []session.Attachable
			if len(secrets) > 0 {
				var srcs []secretsprovider.Source
				for _, s := range secrets {
					src, err := parseSecret(s)
					if err != nil {
						return err
					}
					srcs = append(srcs, src)
				}
				store, err := secretsprovider.NewStore(srcs)
				if err != nil {
					return err
				}
				attach = append(attach, secretsprovider.NewSecretProvider(store))
			}
			c, err := client.New(ctx, addr)
			if err != nil {
				return err
			}
			defer c.Close()
			img := bk.Image(tools)
			fe := &frontend.Frontend{Tools: &img}
			opt := client.SolveOpt{
				Exports:       []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}},
				LocalMounts:   mounts,
				FrontendAttrs: attrs,
				Session:       attach,
			}
			ch := make(chan *client.SolveStatus)
			eg, ctx := errgroup.WithContext(ctx)
			eg.Go(func() error {
				_, err := c.Build(ctx, opt, "c2vm", fe.Build, ch)
				return err
			})
			eg.Go(func() error {
				d, err := progressui.NewDisplay(os.Stderr, progressui.DisplayMode(progress))
				if err != nil {
					return err
				}
				_, err = d.UpdateFrom(ctx, ch)
				return err
			})
			return eg.Wait()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	f.StringVarP(&out, "output", "o", ".", "directory for linux.img and the other formats")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "NAME=VALUE build arg, C2VM_ options included")
	f.StringVar(&target, "target", "", "Dockerfile stage to build")
	f.StringVar(&platform, "platform", "", "target platform, e.g. linux/amd64")
	f.StringArrayVar(&secrets, "secret", nil, "id=ID,src=FILE secret, as for docker buildx build")
	f.StringArrayVar(&contexts, "build-context", nil, "NAME=DIR named context")
	f.StringVar(&tools, "tools-image", "", "c2vm image to run the assembly step in (default $C2VM_IMAGE)")
	f.StringVar(&progress, "progress", "auto", "progress output: auto, plain, tty, quiet or rawjson")
	return cmd
}

// parseSecret reads id=ID,src=FILE (or env=VAR).
func parseSecret(s string) (secretsprovider.Source, error) {
	var src secretsprovider.Source
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "id":
			src.ID = v
		case "src", "source":
			src.FilePath = v
		case "env":
			src.Env = v
		default:
			return src, fmt.Errorf("--secret %q: unknown key %q (use id=ID,src=FILE or id=ID,env=VAR)", s, k)
		}
	}
	if src.ID == "" {
		return src, fmt.Errorf("--secret %q: id= is required", s)
	}
	return src, nil
}
