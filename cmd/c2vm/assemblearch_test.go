package main

import (
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/ocitest"
)

// --arch auto takes the machine from the image's config; a named one
// picks that platform from an index; an image for another machine is
// refused with one error.
func TestAssembleArchFromImage(t *testing.T) {
	layer := ocitest.NewTar().File("app", "x", 0o755).Bytes()
	one, both, other := t.TempDir(), t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ocitest.WritePlatformLayout(one, "v1", map[string][]byte{"arm64": layer}))
	must(ocitest.WritePlatformLayout(both, "v1", map[string][]byte{"amd64": layer, "arm64": layer}))
	must(ocitest.WritePlatformLayout(other, "v1", map[string][]byte{"riscv64": layer}))
	for _, c := range []struct {
		spec, arch string
		want       disk.Arch
	}{
		{"oci-layout:" + one + ":v1", "auto", disk.ARM64},
		{"oci-layout:" + both + ":v1", "arm64", disk.ARM64},
		{"oci-layout:" + both + ":v1", "amd64", disk.AMD64},
		{t.TempDir(), "auto", disk.AMD64},
	} {
		var o exporter.Options
		src, err := openSource(c.spec, c.arch, &o)
		if err != nil {
			t.Fatalf("%s --arch %s: %v", c.spec, c.arch, err)
		}
		if o.Arch != c.want || (src.Architecture() != "" && src.Architecture() != string(c.want)) {
			t.Errorf("%s --arch %s: disk for %q from an image for %q, want %q", c.spec, c.arch, o.Arch, src.Architecture(), c.want)
		}
		src.Close()
	}
	var o exporter.Options
	if _, err := openSource("oci-layout:"+other+":v1", "auto", &o); err == nil || !strings.Contains(err.Error(), "is an image for riscv64") {
		t.Errorf("riscv64 image: %v", err)
	}
}
