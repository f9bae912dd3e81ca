# Shared helpers for the benchmarks: build, start daemons on 127.0.0.1,
# time things. Sourced, not run.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Daemons run with default settings (mDNS, port mapping): run the whole
# benchmark in a network namespace of its own holding only loopback.
if [ -z "${SHOAL_NETNS:-}" ]; then
	(cd "$REPO" && go mod download)
	. "$REPO/scripts/netns.sh"
	run_isolated bash "$0" "$@"
	exit
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
LOOP=/ip4/127.0.0.1/tcp/0

build() {
	(cd "$REPO" && go build -o "$WORK/bin/shoal" ./cmd/shoal && go build -o "$WORK/bin/genmodel" ./scripts/genmodel &&
		go build -o "$WORK/bin/baseline" ./scripts/bench/baseline)
	SHOAL="$WORK/bin/shoal"
}

# warm: on a VM the first touch of guest memory is slow (0.5 GB/s here
# against 6 GB/s after); write and drop a scratch file first so no
# measurement pays it alone.
warm() { dd if=/dev/zero of="$WORK/scratch" bs=1M count="$1" status=none && rm -f "$WORK/scratch"; }

# daemon NAME [ARGS...]: start a daemon on home $WORK/NAME, wait for it,
# and set ADDR to its first TCP multiaddr.
daemon() {
	local name=$1; shift
	"$SHOAL" --home "$WORK/$name" daemon --listen $LOOP --dht-mode server "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
	PIDS+=($!)
	for _ in $(seq 300); do grep -q '/ip4/127.0.0.1/tcp' "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
	ADDR=$(grep -o '/ip4/127.0.0.1/tcp/[^ ]*' "$WORK/$name.out" | head -1)
	[ -n "$ADDR" ] || { echo "daemon $name did not start"; cat "$WORK/$name.log"; exit 1; }
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# tcp_baseline FILE: the better of two plain TCP copies file→file (with
# fsync) of FILE over loopback, in MB/s.
tcp_baseline() {
	local best=0 m
	for _ in 1 2; do
		read -r _ _ _ m < <("$WORK/bin/baseline" tcpcopy "$1" "$WORK/tcp.out")
		rm -f "$WORK/tcp.out"
		best=$(awk -v a="$best" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
	done
	echo "$best"
}
