package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/frontend"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// buildFlags are c2vm build's inputs, as docker buildx build names them.
type buildFlags struct {
	file, out, target, platform, tools, progress string
	buildArgs, secrets, contexts                 []string
}

func buildCmd() *cobra.Command {
	var b buildFlags
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build a Dockerfile into a VM disk through BuildKit, with the frontend in-process",
		Long: `Build a Dockerfile into DIR/linux.img against the BuildKit daemon at
BUILDKIT_HOST, running the c2vm frontend in this process: no published
frontend image is needed, only the c2vm image for the assembly step
(--tools-image or C2VM_IMAGE). Options are the same C2VM_ build args the
frontend takes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return b.run(cmd.Context(), args[0]) },
	}
	f := cmd.Flags()
	f.StringVarP(&b.file, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	f.StringVarP(&b.out, "output", "o", ".", "directory for linux.img and the other formats")
	f.StringArrayVar(&b.buildArgs, "build-arg", nil, "NAME=VALUE build arg, C2VM_ options included")
	f.StringVar(&b.target, "target", "", "Dockerfile stage to build")
	f.StringVar(&b.platform, "platform", "", "target platform, e.g. linux/amd64")
	f.StringArrayVar(&b.secrets, "secret", nil, "id=ID,src=FILE secret, as for docker buildx build")
	f.StringArrayVar(&b.contexts, "build-context", nil, "NAME=DIR named context")
	f.StringVar(&b.tools, "tools-image", "", "c2vm image to run the assembly step in (default $C2VM_IMAGE)")
	f.StringVar(&b.progress, "progress", "auto", "progress output: auto, plain, tty, quiet or rawjson")
	return cmd
}

// run solves the Dockerfile in dir with the frontend in this process and
// exports the disk to b.out, showing BuildKit's progress.
func (b *buildFlags) run(ctx context.Context, dir string) error {
	addr := os.Getenv("BUILDKIT_HOST")
	if addr == "" {
		return usererr.New("BUILDKIT_HOST is not set", "export BUILDKIT_HOST=unix:///path/to/buildkitd.sock (hack/testenv up prints it)")
	}
	if b.tools == "" {
		b.tools = os.Getenv("C2VM_IMAGE")
	}
	if b.tools == "" {
		return usererr.New("no c2vm image for the assembly step", "pass --tools-image REF or export C2VM_IMAGE=REF")
	}
	if b.file == "" {
		b.file = filepath.Join(dir, "Dockerfile")
	}
	attrs := b.attrs()
	mounts, err := b.mounts(dir, attrs)
	if err != nil {
		return err
	}
	attach, err := b.attachables()
	if err != nil {
		return err
	}
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	fe := &frontend.Frontend{ToolsRef: b.tools}
	opt := client.SolveOpt{
		Exports:       []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: b.out}},
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
		d, err := progressui.NewDisplay(os.Stderr, progressui.DisplayMode(b.progress))
		if err != nil {
			return err
		}
		_, err = d.UpdateFrom(ctx, ch)
		return err
	})
	return eg.Wait()
}

// attrs are the frontend's options, as buildx passes them.
func (b *buildFlags) attrs() map[string]string {
	attrs := map[string]string{"filename": filepath.Base(b.file)}
	for _, a := range b.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v = os.Getenv(k)
		}
		attrs["build-arg:"+k] = v
	}
	if b.target != "" {
		attrs["target"] = b.target
	}
	if b.platform != "" {
		attrs["platform"] = b.platform
	}
	return attrs
}

// mounts are the local directories the build reads: the context, the
// Dockerfile's directory and each named context, which attrs then names.
func (b *buildFlags) mounts(dir string, attrs map[string]string) (map[string]fsutil.FS, error) {
	mounts := map[string]fsutil.FS{}
	add := func(name, dir string) error {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		mounts[name] = fs
		return nil
	}
	for name, d := range map[string]string{"context": dir, "dockerfile": filepath.Dir(b.file)} {
		if err := add(name, d); err != nil {
			return nil, err
		}
	}
	for _, c := range b.contexts {
		name, d, ok := strings.Cut(c, "=")
		if !ok {
			return nil, usererr.New(fmt.Sprintf("--build-context %q is not NAME=DIR", c), "use --build-context NAME=DIR")
		}
		if err := add(name, d); err != nil {
			return nil, err
		}
		attrs["context:"+name] = "local:" + name
	}
	return mounts, nil
}

// attachables serve the build's secrets from files or the environment.
func (b *buildFlags) attachables() ([]session.Attachable, error) {
	if len(b.secrets) == 0 {
		return nil, nil
	}
	var srcs []secretsprovider.Source
	for _, s := range b.secrets {
		src, err := parseSecret(s)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
	}
	store, err := secretsprovider.NewStore(srcs)
	if err != nil {
		return nil, err
	}
	return []session.Attachable{secretsprovider.NewSecretProvider(store)}, nil
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
			return src, usererr.New(fmt.Sprintf("--secret %q: unknown key %q", s, k), "use id=ID,src=FILE or id=ID,env=VAR")
		}
	}
	if src.ID == "" {
		return src, usererr.New(fmt.Sprintf("--secret %q has no id=", s), "use id=ID,src=FILE or id=ID,env=VAR")
	}
	return src, nil
}
