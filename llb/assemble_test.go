package llb

import (
	"context"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/llbtest"
	bk "github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

func diskState(t *testing.T, formats string) bk.State {
	fs, err := disk.ParseFormats(formats)
	if err != nil {
		t.Fatal(err)
	}
	rootfs := bk.Image("docker.io/library/debian:bookworm").Run(bk.Shlex("true")).Root()
	tools := bk.Image("127.0.0.1:5000/c2vm:dev")
	return Disk(rootfs, tools, DiskOptions{Formats: fs[1:], Size: "4G", Firmware: "hybrid", Cmdline: "quiet", Epoch: "1700000000"})
}

func TestDiskAssembleStep(t *testing.T) {
	execs := llbtest.Execs(llbtest.Ops(t, diskState(t, "raw")))
	var asm *pb.ExecOp
	for _, e := range execs {
		if slices.Contains(e.Meta.Args, "assemble") {
			asm = e
		}
	}
	if asm == nil {
		t.Fatal("no c2vm assemble step")
	}
	want := "c2vm assemble --quiet -o /out --size 4G --firmware hybrid --cmdline quiet --secure-boot-dir /usr/lib/c2vm/secureboot /rootfs"
	if got := strings.Join(asm.Meta.Args, " "); got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if !slices.Contains(asm.Meta.Env, "SOURCE_DATE_EPOCH=1700000000") {
		t.Errorf("env %v lacks SOURCE_DATE_EPOCH", asm.Meta.Env)
	}
	if asm.Network != pb.NetMode_NONE {
		t.Errorf("assembly has network %v", asm.Network)
	}
	var rootfs, out *pb.Mount
	for _, m := range asm.Mounts {
		switch m.Dest {
		case "/rootfs":
			rootfs = m
		case "/out":
			out = m
		}
	}
	if rootfs == nil || !rootfs.Readonly {
		t.Errorf("rootfs not mounted read-only: %+v", rootfs)
	}
	if out == nil || out.Input != -1 || out.Output < 0 {
		t.Errorf("/out is not a fresh scratch output: %+v", out)
	}
}

func TestNoPrivilegedStep(t *testing.T) {
	for _, e := range llbtest.Execs(llbtest.Ops(t, diskState(t, "qcow2,vhd"))) {
		if e.Security != pb.SecurityMode_SANDBOX {
			t.Errorf("step %v runs with security %v", e.Meta.Args, e.Security)
		}
	}
}

func TestConvertSteps(t *testing.T) {
	execs := llbtest.Execs(llbtest.Ops(t, diskState(t, "qcow2,vhd")))
	var conv []string
	for _, e := range execs {
		if isConvert(e) {
			conv = append(conv, strings.Join(e.Meta.Args, " "))
		}
	}
	slices.Sort(conv)
	// An explicit C2VM_DISK_SIZE is the size of every format.
	want := []string{
		"c2vm convert --format qcow2 --min-virtual-size 0 /in/linux.img /out/linux.qcow2",
		"c2vm convert --format vhd --min-virtual-size 0 /in/linux.img /out/linux.vhd",
	}
	if !slices.Equal(conv, want) {
		t.Errorf("conversions %q, want %q", conv, want)
	}
}

// An auto-sized disk's sparse formats get at least 8 GiB (c2vm convert
// leaves fixed formats as they are).
func TestConvertAutoSize(t *testing.T) {
	fs, _ := disk.ParseFormats("qcow2")
	st := Disk(bk.Image("docker.io/library/debian:bookworm"), bk.Image("127.0.0.1:5000/c2vm:dev"), DiskOptions{Formats: fs[1:], Size: "auto", Firmware: "hybrid"})
	n := 0
	for _, e := range llbtest.Execs(llbtest.Ops(t, st)) {
		if isConvert(e) {
			n++
			if !slices.Contains(e.Meta.Args, strconv.Itoa(disk.MinVirtualSize)) {
				t.Errorf("conversion %q", e.Meta.Args)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d conversions", n)
	}
}

func TestDeterministic(t *testing.T) {
	if a, b := llbtest.Digest(t, diskState(t, "qcow2")), llbtest.Digest(t, diskState(t, "qcow2")); a != b {
		t.Errorf("same inputs, different LLB: %s %s", a, b)
	}
	if a, b := llbtest.Digest(t, diskState(t, "qcow2")), llbtest.Digest(t, diskState(t, "vdi")); a == b {
		t.Error("different formats, same LLB")
	}
}

func TestNoCache(t *testing.T) {
	fs, _ := disk.ParseFormats("qcow2")
	ignored := func(noCache bool) int {
		st := Disk(bk.Image("docker.io/library/x"), bk.Image("c2vm"), DiskOptions{Formats: fs[1:], NoCache: noCache})
		def, err := st.Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, md := range def.Metadata {
			if md.IgnoreCache {
				n++
			}
		}
		return n
	}
	if got := ignored(true); got != 2 {
		t.Errorf("--no-cache: %d steps ignore the cache, want assembly and conversion", got)
	}
	if got := ignored(false); got != 0 {
		t.Errorf("%d steps ignore the cache by default", got)
	}
}

// App mode: the image config reaches the assembly as a file on a read-only
// mount, never as arguments; the hostname is validated before it gets here.
func TestDiskAppMode(t *testing.T) {
	rootfs := bk.Image("docker.io/library/busybox:latest")
	st := Disk(rootfs, bk.Image("127.0.0.1:5000/c2vm:dev"), DiskOptions{Mode: "app", Hostname: "box", ImageConfig: []byte(`{"Cmd":["sh","-c","evil; $(x)"]}`)})
	args, asm := assembleExec(t, st)
	if args != "c2vm assemble --quiet -o /out --mode app --kernel-dir /usr/lib/c2vm/kernel --hostname box --secure-boot-dir /usr/lib/c2vm/secureboot --image-config /c2vm-config/config.json /rootfs" {
		t.Errorf("args %q", args)
	}
	if cfg := mountAt(asm, "/c2vm-config"); cfg == nil || !cfg.Readonly {
		t.Fatalf("config not mounted read-only: %+v", mountAt(asm, "/c2vm-config"))
	}
	var data string
	for _, a := range llbtest.FileActions(llbtest.Ops(t, st)) {
		if mk := a.GetMkfile(); mk != nil && mk.Path == "/config.json" {
			data = string(mk.Data)
		}
	}
	if !strings.Contains(data, "evil; $(x)") || strings.Contains(args, "evil") {
		t.Errorf("config file %q, args %q", data, args)
	}
}

// TestFinalStateHoldsOnlyAskedFiles follows the definition from its head
// to the steps that write the exported files: BuildKit exports exactly the
// formats named (raw only when named or alone) and c2vm.json.
func TestFinalStateHoldsOnlyAskedFiles(t *testing.T) {
	for in, want := range map[string]string{
		"raw":                 "c2vm.json linux.img",
		"qcow2":               "c2vm.json linux.qcow2",
		"raw,qcow2":           "c2vm.json linux.img linux.qcow2",
		"ova":                 "c2vm.json linux.ova",
		"ova,vdi":             "c2vm.json linux.ova linux.vdi",
		"raw,ova,gce":         "c2vm.json linux-gce.tar.gz linux.img linux.ova",
		"containerdisk":       "c2vm.json disk/linux.qcow2",
		"vhd-azure,vmdk,vhdx": "c2vm.json linux-azure.vhd linux.vhdx linux.vmdk",
	} {
		if got := strings.Join(finalFiles(t, diskState(t, in)), " "); got != want {
			t.Errorf("C2VM_FORMAT=%s exports %q, want %q", in, got, want)
		}
	}
}

// finalFiles are the files in a state, read from the steps that made it:
// the outputs `c2vm assemble` writes for its --format, the destination of
// qemu-img and tar, the targets of file copies, merged.
func finalFiles(t *testing.T, st bk.State) []string {
	t.Helper()
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*pb.Op{}
	var head *pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil {
			t.Fatal(err)
		}
		ops[digest.FromBytes(dt).String()], head = &op, &op
	}
	files := map[string]bool{}
	var walk func(in *pb.Input)
	walk = func(in *pb.Input) {
		op := ops[in.Digest]
		switch {
		case op.GetMerge() != nil:
			for _, m := range op.GetMerge().Inputs {
				walk(op.Inputs[m.Input])
			}
		case op.GetFile() != nil:
			for _, a := range op.GetFile().Actions {
				if c := a.GetCopy(); c != nil {
					files[strings.TrimPrefix(c.Dest, "/")] = true
				}
			}
		case op.GetExec() != nil:
			for _, f := range execFiles(t, op.GetExec(), in.Index) {
				files[f] = true
			}
		default:
			t.Fatalf("unexpected op %v", op)
		}
	}
	walk(head.Inputs[0])
	var out []string
	for f := range files {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// execFiles are the files a step writes into its output mount index.
func execFiles(t *testing.T, e *pb.ExecOp, index int64) []string {
	var dest string
	for _, m := range e.Mounts {
		if m.Output == index {
			dest = m.Dest
		}
	}
	args := e.Meta.Args
	rel := func(p string) string { return strings.TrimPrefix(p, dest+"/") }
	switch {
	case slices.Contains(args, "assemble"):
		format := "raw"
		if i := slices.Index(args, "--format"); i > 0 {
			format = args[i+1]
		}
		fs, err := disk.ParseFormats(format)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{"c2vm.json"}
		for _, f := range disk.Outputs(fs) {
			out = append(out, f.FileName())
		}
		return out
	case args[0] == "c2vm" && args[1] == "convert":
		return []string{rel(args[len(args)-1])}
	}
	t.Fatalf("step %v writes unknown files", args)
	return nil
}

// Changing which conversions are asked for leaves the assembly step as it
// is, so BuildKit's cache keeps it.
func TestAssemblyStepSharedByConversions(t *testing.T) {
	asm := func(formats string) string {
		for _, e := range llbtest.Execs(llbtest.Ops(t, diskState(t, formats))) {
			if slices.Contains(e.Meta.Args, "assemble") {
				return strings.Join(e.Meta.Args, " ")
			}
		}
		t.Fatal("no assembly")
		return ""
	}
	raw := asm("raw")
	for _, f := range []string{"qcow2", "raw,vmdk", "gce,vhd-azure,containerdisk"} {
		if got := asm(f); got != raw {
			t.Errorf("C2VM_FORMAT=%s assembles with %q, raw with %q", f, got, raw)
		}
	}
	if got := asm("ova,qcow2"); !strings.Contains(got, "--format raw,ova") {
		t.Errorf("ova with a conversion: %q", got)
	}
}

// A containerDisk's qcow2 is written by KubeVirt's qemu user (107) into
// /disk, made for it: in the image, both are 107:107.
func TestContainerDiskOwner(t *testing.T) {
	st := diskState(t, "containerdisk")
	ops := llbtest.Ops(t, st)
	var conv *pb.ExecOp
	for _, e := range llbtest.Execs(ops) {
		if isConvert(e) {
			conv = e
		}
	}
	if conv == nil || conv.Meta.User != "107:107" || conv.Meta.Args[len(conv.Meta.Args)-1] != "/out/disk/linux.qcow2" {
		t.Fatalf("conversion %+v", conv)
	}
	var mkdir *pb.FileActionMkDir
	for _, a := range llbtest.FileActions(ops) {
		if m := a.GetMkdir(); m != nil && m.Path == "/disk" {
			mkdir = m
		}
	}
	if mkdir == nil || mkdir.Owner.GetUser().GetByID() != 107 || mkdir.Owner.GetGroup().GetByID() != 107 || path.Clean(mkdir.Path) != "/disk" {
		t.Errorf("/disk: %+v", mkdir)
	}
	if !(DiskOptions{Formats: mustFormats(t, "containerdisk")}).ContainerDisk() || (DiskOptions{}).ContainerDisk() {
		t.Error("ContainerDisk() does not tell")
	}
}

func mustFormats(t *testing.T, s string) []disk.Format {
	fs, err := disk.ParseFormats(s)
	if err != nil {
		t.Fatal(err)
	}
	return fs[1:]
}

func isConvert(e *pb.ExecOp) bool {
	return len(e.Meta.Args) > 1 && e.Meta.Args[0] == "c2vm" && e.Meta.Args[1] == "convert"
}

// The distribution's signed chain reaches the assembly on a read-only
// mount, tried before the c2vm image's own; off asks for neither.
func TestDiskSecureBoot(t *testing.T) {
	rootfs := bk.Image("docker.io/library/debian:bookworm")
	signed := bk.Image("docker.io/library/debian:bookworm").Run(bk.Shlex("true")).AddMount("/c2vm-signed", bk.Scratch())
	asmArgs := func(o DiskOptions) (string, *pb.ExecOp) {
		return assembleExec(t, Disk(rootfs, bk.Image("127.0.0.1:5000/c2vm:dev"), o))
	}
	args, asm := asmArgs(DiskOptions{SecureBoot: "require", Signed: &signed})
	if want := "c2vm assemble --quiet -o /out --secure-boot require --secure-boot-dir /c2vm-signed --secure-boot-dir /usr/lib/c2vm/secureboot /rootfs"; args != want {
		t.Errorf("args %q, want %q", args, want)
	}
	if m := mountAt(asm, "/c2vm-signed"); m == nil || !m.Readonly {
		t.Errorf("signed chain mount %+v, want a read-only mount at /c2vm-signed", mountAt(asm, "/c2vm-signed"))
	}
	if args, _ := asmArgs(DiskOptions{SecureBoot: "off", Signed: &signed}); args != "c2vm assemble --quiet -o /out --secure-boot off /rootfs" {
		t.Errorf("off: args %q", args)
	}
}

// assembleExec is st's c2vm assemble step and its arguments.
func assembleExec(t *testing.T, st bk.State) (string, *pb.ExecOp) {
	t.Helper()
	for _, e := range llbtest.Execs(llbtest.Ops(t, st)) {
		if slices.Contains(e.Meta.Args, "assemble") {
			return strings.Join(e.Meta.Args, " "), e
		}
	}
	t.Fatal("no c2vm assemble step")
	return "", nil
}

// mountAt is e's mount at dest, or nil.
func mountAt(e *pb.ExecOp, dest string) *pb.Mount {
	for _, m := range e.Mounts {
		if m.Dest == dest {
			return m
		}
	}
	return nil
}
