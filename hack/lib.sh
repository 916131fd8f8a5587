# Shared helpers for hack/ scripts. Sourced, not run, by scripts in hack/.

# The scripts' own directory, so helpers find hack/keys from any working
# directory.
hack_dir=$(cd "$(dirname "$0")" && pwd)

# One cache directory for everything heavy (debootstrap trees, the test
# tools' binaries, BuildKit's state) so a warm machine is fast and a cold one
# still works. The tools' compiled packages are in the Go cache.
C2VM_CACHE=${C2VM_CACHE:-/var/cache/c2vm}

# debian_mirror prints the Debian archive URI this machine's apt uses, so the
# scripts never name an archive host themselves.
debian_mirror() {
	m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
	[ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$m" ] || { echo "no Debian mirror found in apt sources" >&2; return 1; }
	echo "$m"
}

# ubuntu_keyring prints the path of the Ubuntu archive keyring kept in
# hack/keys after checking that the file has the SHA-256 written beside it
# and that its primary keys are exactly the fingerprints written there, so
# a changed file is never trusted.
ubuntu_keyring() {
	kr=$hack_dir/keys/ubuntu-archive-keyring.gpg
	list=${kr%.gpg}.fingerprints
	want=$(grep -v -e '^#' -e '^sha256 ' "$list" | awk 'NF {print $1}' | sort)
	sum=$(awk '$1=="sha256" {print $2}' "$list")
	if [ -z "$sum" ] || [ "$(sha256sum <"$kr" | cut -d' ' -f1)" != "$sum" ]; then
		echo "hack/keys/ubuntu-archive-keyring.gpg does not have the SHA-256 written in ubuntu-archive-keyring.fingerprints; fix: restore both files from git, or refresh them as that file describes" >&2
		return 1
	fi
	# A throwaway GNUPGHOME: --show-keys reads the file and never touches
	# the user's own keyring.
	gh=$(mktemp -d)
	have=$(GNUPGHOME=$gh gpg --batch --show-keys --with-colons "$kr" 2>/dev/null |
		awk -F: '$1=="pub"{p=1; next} $1=="fpr" && p {print $10; p=0}' | sort)
	rm -rf "$gh"
	if [ -z "$have" ] || [ "$have" != "$want" ]; then
		echo "hack/keys/ubuntu-archive-keyring.gpg does not hold exactly the keys in ubuntu-archive-keyring.fingerprints; fix: restore both files from git, or refresh them as that file describes" >&2
		return 1
	fi
	echo "$kr"
}

# clear_tree DIR removes a debootstrap target left by a run that was
# killed: debootstrap may have left mounts in it (/proc, /sys, /dev/pts, and
# in a container bind mounts of the host's devices). Every mount under DIR
# is detached first, deepest first, and rm stays on DIR's filesystem.
clear_tree() {
	[ -e "$1" ] || return 0
	ct_dir=$(realpath "$1")
	findmnt -rno TARGET | awk -v d="$ct_dir/" 'index($0, d) == 1' | sort -r | while read -r ct_m; do
		umount -l "$ct_m" || true
	done
	if findmnt -rno TARGET | awk -v d="$ct_dir/" 'index($0, d) == 1 {found=1} END {exit !found}'; then
		echo "$ct_dir still has mounts under it; fix: unmount them (findmnt | grep $ct_dir) and run again" >&2
		return 1
	fi
	rm -rf --one-file-system "$ct_dir"
}
