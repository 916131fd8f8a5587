package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/c2vm/c2vm/appinit"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxInitBytes bounds the /init binary (c2vm is about 35 MiB).
const maxInitBytes = 512 << 20

// Build writes the initramfs for k to w: /init (initBinary, a static c2vm),
// the modules named (ext4 always: the init cannot mount the root without
// it) with their dependencies and softdeps, decompressed, and the load
// order the init follows. It is zstd-compressed when the kernel's config
// says it can unpack zstd (CONFIG_RD_ZSTD), gzip otherwise. A module this
// kernel lacks is skipped with a note through k.Logf.
func Build(w io.Writer, k *Kernel, initBinary string, modules []string) error {
	if !validVersion(k.Version) {
		return fmt.Errorf("kernel version %q", k.Version)
	}
	r, err := os.OpenRoot(k.Dir)
	if err != nil {
		return err
	}
	defer r.Close()
	ix, err := loadIndex(r, k.ModulesDir)
	if err != nil {
		return fmt.Errorf("modules of kernel %s: %w", k.Version, err)
	}
	p, err := ix.plan(append(append([]string(nil), modules...), "ext4"))
	if err != nil {
		return fmt.Errorf("modules of kernel %s: %w", k.Version, err)
	}
	for _, m := range p.missing {
		k.logf("module %s: not in kernel %s, skipped", m, k.Version)
	}
	for _, n := range p.notes {
		k.logf("module %s", n)
	}
	if !ix.builtin["ext4"] && p.deps["ext4"] == nil {
		return fmt.Errorf("kernel %s in %s has no ext4, built in or as a module: the VM could not mount its root", k.Version, k.Dir)
	}
	a := newArchive()
	a.add(entry{name: "dev/console", mode: modeChar | 0o600, major: 5, minor: 1})
	for _, d := range []string{"proc", "sys", "newroot"} {
		a.add(entry{name: d, mode: modeDir | 0o755})
	}
	a.addFile("init", 0o755, func() ([]byte, error) { return readInit(initBinary) })
	a.addFile(strings.TrimPrefix(appinit.ModuleListPath, "/"), 0o644, func() ([]byte, error) {
		return []byte(loadOrder(k.Version, ix, p)), nil
	})
	for _, name := range p.order {
		src := k.ModulesDir + "/" + ix.paths[name]
		a.addFile(archivePath(k.Version, ix.paths[name]), 0o644, func() ([]byte, error) { return readModule(r, src) })
	}
	return compress(w, rdZstd(r, k), a.writeTo)
}

// archivePath is where a module sits in the initramfs: its place under
// lib/modules/VERSION, without the compression suffix.
func archivePath(version, rel string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		rel = strings.TrimSuffix(rel, ext)
	}
	return path.Join("lib/modules", version, rel)
}

// loadOrder is the init's module list: "module: its dependencies", in order.
func loadOrder(version string, ix *index, p *plan) string {
	var b strings.Builder
	for _, name := range p.order {
		b.WriteString(archivePath(version, ix.paths[name]) + ":")
		for _, d := range p.deps[name] {
			if rel, ok := ix.paths[d]; ok {
				b.WriteString(" " + archivePath(version, rel))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func readInit(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("init binary: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInitBytes+1))
	if err == nil && len(data) > maxInitBytes {
		err = fmt.Errorf("init binary %s: larger than %d MiB", p, maxInitBytes>>20)
	}
	return data, err
}

// readModule reads a module, decompressing .ko.xz, .ko.zst and .ko.gz: the
// init loads modules with finit_module and no decompressor of its own.
func readModule(r *os.Root, p string) ([]byte, error) {
	raw, err := readBounded(r, p, maxModuleBytes)
	if err != nil {
		return nil, err
	}
	var dec io.Reader
	switch {
	case strings.HasSuffix(p, ".xz"):
		dec, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(p, ".zst"):
		var z *zstd.Decoder
		if z, err = zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxModuleBytes)); err == nil {
			defer z.Close()
			dec = z
		}
	case strings.HasSuffix(p, ".gz"):
		dec, err = gzip.NewReader(bytes.NewReader(raw))
	default:
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	data, err := io.ReadAll(io.LimitReader(dec, maxModuleBytes+1))
	if err == nil && len(data) > maxModuleBytes {
		err = fmt.Errorf("larger than %d MiB decompressed", maxModuleBytes>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return data, nil
}

// rdZstd reports whether the kernel's config has CONFIG_RD_ZSTD=y. Without
// a config, gzip: every kernel that boots an initramfs unpacks it.
func rdZstd(r *os.Root, k *Kernel) bool {
	if k.Config == "" {
		return false
	}
	cfg, err := readBounded(r, k.Config, maxIndexBytes)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		if strings.TrimSpace(line) == "CONFIG_RD_ZSTD=y" {
			return true
		}
	}
	return false
}

// compress runs write through zstd or gzip with settings that make the
// output depend on the input only (one encoder thread, no timestamps).
func compress(w io.Writer, useZstd bool, write func(io.Writer) error) error {
	var c io.WriteCloser
	if useZstd {
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		c = z
	} else {
		g, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return err
		}
		c = g
	}
	if err := write(c); err != nil {
		c.Close()
		return err
	}
	return c.Close()
}
