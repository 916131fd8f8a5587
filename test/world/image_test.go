//go:build world

package world

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// The c2vm image is one index of a linux/amd64 and a linux/arm64 variant,
// each holding what disks of both architectures need (the Dockerfile's
// contract with the exporter). The test world builds the index only when
// asked (C2VM_ARM64=1 or hack/testenv up --arm64): make test's world is
// amd64 only.
func TestImageMultiArch(t *testing.T) {
	if os.Getenv("C2VM_ARM64") != "1" {
		t.Skip("the arm64 test world was not asked for (C2VM_ARM64=1 ./hack/world-test -run TestImageMultiArch builds it): the c2vm image is amd64 only")
	}
	ref := env(t, "C2VM_IMAGE")
	out, err := crane(t, "manifest", ref).Output()
	if err != nil {
		t.Fatalf("crane manifest %s: %v (the arm64 world was asked for: hack/testenv up --arm64 pushes the c2vm image as an index)", ref, err)
	}
	var index struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	must(t, json.Unmarshal(out, &index))
	have := map[string]string{}
	for _, m := range index.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			have[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
		}
	}
	if len(index.Manifests) == 0 || have["linux/amd64"] == "" || have["linux/arm64"] == "" {
		t.Fatalf("%s is not an index of linux/amd64 and linux/arm64 (media type %q, platforms %v):\n%s", ref, index.MediaType, have, out)
	}
	t.Logf("%s: %s, linux/amd64 %s, linux/arm64 %s", ref, index.MediaType, have["linux/amd64"], have["linux/arm64"])
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) { checkVariant(t, ref, arch) })
	}
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkVariant reads one variant's filesystem and config and checks the
// contract: its own c2vm, an init binary, a kernel and GRUB's modules for
// each architecture, the signed amd64 chain, and the environment naming them.
func checkVariant(t *testing.T, ref, arch string) {
	cfg, err := crane(t, "config", "--platform", "linux/"+arch, ref).Output()
	if err != nil {
		t.Fatalf("crane config: %v", err)
	}
	var c struct {
		Architecture string `json:"architecture"`
		Config       struct {
			Env        []string `json:"Env"`
			Entrypoint []string `json:"Entrypoint"`
		} `json:"config"`
	}
	must(t, json.Unmarshal(cfg, &c))
	if c.Architecture != arch {
		t.Errorf("config architecture %q", c.Architecture)
	}
	for _, e := range []string{"C2VM_KERNEL_DIR=/usr/lib/c2vm/kernel", "C2VM_INIT_DIR=/usr/lib/c2vm/init", "C2VM_SECURE_BOOT_DIR=/usr/lib/c2vm/secureboot"} {
		if !slices.Contains(c.Config.Env, e) {
			t.Errorf("no %s in the environment %v", e, c.Config.Env)
		}
	}
	if strings.Join(c.Config.Entrypoint, " ") != "/usr/bin/c2vm" {
		t.Errorf("entrypoint %v", c.Config.Entrypoint)
	}

	fs := exportVariant(t, ref, arch)
	binaries := map[string]string{"usr/bin/c2vm": arch, "usr/lib/c2vm/init/c2vm-amd64": "amd64", "usr/lib/c2vm/init/c2vm-arm64": "arm64"}
	for p, want := range binaries {
		head, ok := fs.heads[p]
		if !ok {
			t.Errorf("/%s is missing", p)
			continue
		}
		m, static, err := elfInfo(head)
		if err != nil {
			t.Errorf("/%s: %v", p, err)
			continue
		}
		if m != elfMachine[want] {
			t.Errorf("/%s is an ELF for %v, want %v", p, m, elfMachine[want])
		}
		if !static {
			t.Errorf("/%s has a program interpreter: not static", p)
		}
	}
	for _, a := range []string{"amd64", "arm64"} {
		root := "usr/lib/c2vm/kernel/" + a
		vers := fs.glob(root + "/boot/vmlinuz-")
		if len(vers) == 0 {
			t.Errorf("no /%s/boot/vmlinuz-*", root)
		}
		for _, v := range vers {
			if !strings.HasSuffix(v, "-"+a) {
				t.Errorf("/%s/boot/vmlinuz-%s is not Debian's %s kernel", root, v, a)
			}
			// Trixie's kernel packages ship usr/lib/modules; both are roots
			// c2vm reads.
			if !fs.paths[root+"/lib/modules/"+v+"/modules.order"] && !fs.paths[root+"/usr/lib/modules/"+v+"/modules.order"] {
				t.Errorf("no /%s/lib/modules/%s or /%[1]s/usr/lib/modules/%[2]s with modules.order", root, v)
			}
		}
	}
	for _, p := range []string{"i386-pc", "x86_64-efi", "arm64-efi"} {
		for _, f := range []string{"normal.mod", "moddep.lst"} {
			if !fs.paths["usr/lib/c2vm/grub/"+p+"/"+f] {
				t.Errorf("/usr/lib/c2vm/grub/%s/%s is missing", p, f)
			}
		}
	}
	if len(fs.glob("usr/lib/c2vm/secureboot/usr/lib/shim/shimx64.efi.signed")) == 0 {
		t.Errorf("no signed shim in /usr/lib/c2vm/secureboot/usr/lib/shim")
	}
	for _, tool := range []string{"usr/bin/grub-mkimage", "usr/sbin/sfdisk", "usr/sbin/mkfs.vfat", "usr/bin/mcopy", "usr/bin/qemu-img"} {
		if !fs.paths[tool] {
			t.Errorf("/%s is missing", tool)
		}
	}
}

// variantFS is what the test keeps of a variant's flattened filesystem:
// every path, and the first bytes of the binaries it checks.
type variantFS struct {
	paths map[string]bool
	heads map[string][]byte
}

// glob returns the rest of every path that starts with prefix and has no
// further slash.
func (f variantFS) glob(prefix string) []string {
	var r []string
	for p := range f.paths {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.Contains(rest, "/") {
			r = append(r, rest)
		}
	}
	return r
}

func exportVariant(t *testing.T, ref, arch string) variantFS {
	cmd := crane(t, "export", "--platform", "linux/"+arch, ref, "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	r, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	fs := variantFS{paths: map[string]bool{}, heads: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("reading crane export: %v\n%s", err, &stderr)
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "/"))
		fs.paths[p] = true
		if h.Typeflag == tar.TypeReg && (p == "usr/bin/c2vm" || strings.HasPrefix(p, "usr/lib/c2vm/init/")) {
			b := make([]byte, 4096)
			n, _ := io.ReadFull(tr, b)
			fs.heads[p] = b[:n]
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("crane export --platform linux/%s: %v\n%s", arch, err, &stderr)
	}
	return fs
}

// elfInfo reads an ELF64 little-endian header and its program headers from
// the first bytes of a file: the machine, and whether it is static (no
// PT_INTERP).
func elfInfo(b []byte) (elf.Machine, bool, error) {
	if len(b) < 64 || !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
		return 0, false, errors.New("not an ELF file")
	}
	if elf.Class(b[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(b[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return 0, false, errors.New("not a 64-bit little-endian ELF")
	}
	le := binary.LittleEndian
	m := elf.Machine(le.Uint16(b[18:]))
	phoff, phentsize, phnum := le.Uint64(b[32:]), uint64(le.Uint16(b[54:])), uint64(le.Uint16(b[56:]))
	if phoff+phentsize*phnum > uint64(len(b)) {
		return m, false, fmt.Errorf("program headers at %d beyond the first %d bytes", phoff, len(b))
	}
	for i := uint64(0); i < phnum; i++ {
		if elf.ProgType(le.Uint32(b[phoff+i*phentsize:])) == elf.PT_INTERP {
			return m, false, nil
		}
	}
	return m, true, nil
}
