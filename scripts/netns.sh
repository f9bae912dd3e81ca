# Sourced by the test scripts. run_isolated CMD...: runs CMD in a network
# namespace of its own that holds only loopback (up, with multicast on), so
# that what the tests start with default settings (mDNS, UPnP port mapping,
# daemons listening on every interface) reaches nothing outside this
# machine's loopback. Needs unshare and ip (util-linux, iproute2); as root
# or with unprivileged user namespaces. Without them it says so and runs
# CMD here.
run_isolated() {
	if [ -n "${SHOAL_NETNS:-}" ]; then
		"$@"
		return
	fi
	if ! command -v ip >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		(apt-get update -qq && apt-get install -y -qq iproute2) >/dev/null 2>&1
	fi
	# As root, a network namespace alone; otherwise inside a user
	# namespace too (-r), where only this user's own ID maps.
	local flags=-rn
	[ "$(id -u)" = 0 ] && flags=-n
	if command -v ip >/dev/null && unshare $flags true 2>/dev/null; then
		SHOAL_NETNS=1 GOPROXY=off GOFLAGS=-mod=mod unshare $flags bash -c \
			'ip link set lo up && ip link set lo multicast on && exec "$@"' run_isolated "$@"
		return
	fi
	echo "note: cannot make a network namespace (unshare -rn); running on this machine's network" >&2
	# Marked, so a script that isolates itself does not try again (and again).
	SHOAL_NETNS=none "$@"
}
