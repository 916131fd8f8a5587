# Shared helpers for hack/ scripts. Sourced, not run.

# One cache directory for everything heavy (debootstrap trees, Go builds of
# test tools) so a warm machine is fast and a cold one still works.
C2VM_CACHE=${C2VM_CACHE:-/var/cache/c2vm}

# debian_mirror prints the Debian archive URI this machine's apt uses, so the
# scripts never name an archive host themselves.
debian_mirror() {
	m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
	[ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$m" ] || { echo "no Debian mirror found in apt sources" >&2; return 1; }
	echo "$m"
}
