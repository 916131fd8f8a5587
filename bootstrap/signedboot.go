package bootstrap

import (
	"strings"

	"github.com/c2vm/c2vm/exporter/secureboot"
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
// image's Ubuntu archive (as apt reads its sources: the URI that serves
// the image's release, main) and Ubuntu's archive key, so apt checks them
// against the suite's signed Release. They are unpacked into
// SignedBootDir, not installed: their maintainer scripts would run
// grub-install against the build host's ESP, and the guest's ESP is
// written by c2vm. The step never fails: without a chain, it leaves the
// reason in FetchErrorFile, which assembly reports (auto) or fails with
// (require).
func ubuntuSignedScript() string {
	s := ubuntuChainSuite
	return strings.Join([]string{
		"set -u",
		"out=" + SignedBootDir,
		"fail() { echo \"c2vm: $1\" >&2; printf '%s\\n' \"$1\" >$out/" + secureboot.FetchErrorFile + "; exit 0; }",
		"[ -r /etc/os-release ] && . /etc/os-release",
		"a=/tmp/c2vm-apt",
		"mkdir -p $a/lists/partial $a/debs",
		"uri=$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null | awk -v c=\"${VERSION_CODENAME:-}\" '$2==c && $3==\"main\" {print $1; exit}')",
		"[ -n \"$uri\" ] || fail \"no Ubuntu archive serving ${VERSION_CODENAME:-this release} (main) in the image's apt sources, to fetch the signed shim and GRUB from\"",
		"k=/usr/share/keyrings/ubuntu-archive-keyring.gpg",
		"[ -r $k ] || fail \"no Ubuntu archive key ($k) to check the signed shim and GRUB with\"",
		"printf 'deb [signed-by=%s] %s " + s + " main\\ndeb [signed-by=%s] %s " + s + "-updates main\\n' $k \"$uri\" $k \"$uri\" >$a/sources.list",
		"o=\"-o Dir::Etc::SourceList=$a/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$a/lists -o APT::Architecture=amd64\"",
		"apt-get $o update || fail \"apt-get update of " + s + " from $uri failed (above)\"",
		"chmod 0777 $a/debs",
		"cd $a/debs",
		"apt-get $o download shim-signed grub-efi-amd64-signed shim || fail \"apt-get download of shim-signed, grub-efi-amd64-signed and shim (" + s + ") failed (above)\"",
		"for f in *.deb; do dpkg-deb -x \"$f\" $out || fail \"dpkg-deb -x $f failed\"; done",
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
