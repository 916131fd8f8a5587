package bootstrap

import (
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// SignedBootDir is where the signed-boot step leaves the distribution's
// signed shim, GRUB and MokManager, unpacked from their packages as they
// would be installed (usr/lib/shim, usr/lib/grub/x86_64-efi-signed).
const SignedBootDir = "/c2vm-signed"

// ubuntuChainSuite is the Ubuntu release whose signed shim and GRUB every
// Ubuntu disk boots through. The signed GRUB of Ubuntu 20.04 and 22.04
// (2.06-2ubuntu14) cannot read an ext4 with metadata_csum_seed, which
// c2vm's root filesystem has, and lacks the serial console; 24.04's GRUB
// 2.12 reads it, and its shim trusts the same Canonical key that signs
// the older releases' kernels. Debian disks likewise boot through the
// newest Debian chain, the c2vm image's (Debian 11's GRUB cannot read the
// root either), so they need no step here.
const ubuntuChainSuite = "noble"

// ubuntuSignedScript downloads the chain's packages from ubuntuChainSuite
// through the image's own apt, with a sources list of its own naming the
// image's archive and Ubuntu's archive key, so apt checks them against the
// suite's signed Release. They are unpacked into SignedBootDir, not
// installed: their maintainer scripts would run grub-install against the
// build host's ESP, and the guest's ESP is written by c2vm.
func ubuntuSignedScript() string {
	s := ubuntuChainSuite
	return strings.Join([]string{
		"set -eu",
		"a=/tmp/c2vm-apt",
		"mkdir -p $a/lists/partial $a/debs",
		"uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $1; exit}')",
		"[ -n \"$uri\" ] || uri=$(awk '$1==\"deb\" {print $2; exit}' /etc/apt/sources.list)",
		"[ -n \"$uri\" ] || { echo 'c2vm: no Ubuntu archive in the image'\"'\"'s apt sources, to fetch the signed shim and GRUB from' >&2; exit 1; }",
		"k=/usr/share/keyrings/ubuntu-archive-keyring.gpg",
		"printf 'deb [signed-by=%s] %s " + s + " main\\ndeb [signed-by=%s] %s " + s + "-updates main\\n' $k \"$uri\" $k \"$uri\" >$a/sources.list",
		"o=\"-o Dir::Etc::SourceList=$a/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$a/lists -o APT::Architecture=amd64\"",
		"apt-get $o update",
		"chmod 0777 $a/debs",
		"cd $a/debs",
		"apt-get $o download shim-signed grub-efi-amd64-signed shim",
		"for f in *.deb; do dpkg-deb -x \"$f\" " + SignedBootDir + "; done",
		"cd /",
		"rm -rf $a",
	}, "\n")
}

// SignedBoot returns a state holding Ubuntu's signed UEFI chain, made
// from st (the image the kernel is installed on) without changing it, and
// cached as the kernel is. Debian's is in the c2vm image; only amd64 has
// one here.
func (d debian) SignedBoot(st llb.State, o Options) (llb.State, bool) {
	if !d.ubuntu || o.Arch != "" && o.Arch != "amd64" {
		return llb.State{}, false
	}
	run := []llb.RunOption{
		llb.Args([]string{"/bin/sh", "-c", ubuntuSignedScript()}),
		llb.User("root"), llb.Dir("/"),
	}
	for _, c := range o.constraints("fetch signed shim and GRUB (" + d.Name() + " " + ubuntuChainSuite + ")") {
		run = append(run, c)
	}
	return st.Run(run...).AddMount(SignedBootDir, llb.Scratch()), true
}
