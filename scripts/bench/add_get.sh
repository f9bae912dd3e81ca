#!/usr/bin/env bash
# Benchmark: `shoal add` and `shoal get` of a 1 GiB model on loopback, each
# printed beside baselines measured in the same run on the same bytes:
# Go crypto/sha256 on one core, coreutils sha256sum, and a plain TCP copy
# file→file over loopback. Not part of CI.
#
#   scripts/bench/add_get.sh [MiB]      (default 1024)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

(cd "$REPO" && go build -o "$WORK/bin/shoal" ./cmd/shoal && go build -o "$WORK/bin/genmodel" ./scripts/genmodel &&
	go build -o "$WORK/bin/baseline" ./scripts/bench/baseline)
SHOAL="$WORK/bin/shoal"
LOOP=/ip4/127.0.0.1/tcp/0
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Warm up: on a VM, the first touch of guest memory is slow (0.5 GB/s
# here against 6 GB/s after); write and drop a scratch file first so no
# measurement pays it alone.
dd if=/dev/zero of="$WORK/scratch" bs=1M count=$((MIB * 3)) status=none && rm -f "$WORK/scratch"
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
BYTES=$(du -sb "$WORK/model" | cut -f1)
cat "$WORK"/model/* "$WORK"/model/*/* >/dev/null 2>&1 || true # warm the page cache
ONE="$WORK/model/model.safetensors"
ONEB=$(stat -c %s "$ONE")

read -r _ _ s go_mbps < <("$WORK/bin/baseline" sha256 "$ONE")
t0=$(now); sha256sum "$ONE" >/dev/null; t1=$(now)
sum_mbps=$(mbps "$ONEB" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
tcp_mbps=0
for _ in 1 2; do # best of two
	read -r _ _ s m < <("$WORK/bin/baseline" tcpcopy "$ONE" "$WORK/tcpcopy.out")
	rm -f "$WORK/tcpcopy.out"
	tcp_mbps=$(awk -v a="$tcp_mbps" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
done

t0=$(now); CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model" 2>/dev/null); t1=$(now)
add_mbps=$(mbps "$BYTES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")

"$SHOAL" --home "$WORK/seed" daemon --listen $LOOP --dht-mode server >"$WORK/seed.out" 2>"$WORK/seed.log" &
PIDS+=($!)
for _ in $(seq 300); do grep -q '/ip4/127.0.0.1/tcp' "$WORK/seed.out" 2>/dev/null && break; sleep 0.1; done
BOOT=$(grep -o '/ip4/127.0.0.1/tcp/[^ ]*' "$WORK/seed.out" | head -1)
get_mbps=0
for i in 1 2; do # best of two, each a fresh home and folder
	t0=$(now)
	"$SHOAL" --home "$WORK/get$i" get "$CID" -o "$WORK/out$i" --bootstrap "$BOOT" --listen $LOOP >/dev/null 2>&1
	t1=$(now)
	m=$(mbps "$BYTES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
	get_mbps=$(awk -v a="$get_mbps" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
	cmp "$ONE" "$WORK/out$i/model.safetensors"
	rm -rf "$WORK/out$i" "$WORK/get$i"
done

echo "model: $BYTES bytes ($MIB MiB safetensors + small files), $(nproc) cores"
echo "baseline go-sha256 (1 core): $go_mbps MB/s"
echo "baseline sha256sum:          $sum_mbps MB/s"
echo "baseline tcp copy loopback:  $tcp_mbps MB/s"
echo "shoal add:  $add_mbps MB/s  = $(ratio "$add_mbps" "$go_mbps") x go-sha256, $(ratio "$add_mbps" "$sum_mbps") x sha256sum (target >= 0.8 x go-sha256)"
echo "shoal get:  $get_mbps MB/s  = $(ratio "$get_mbps" "$tcp_mbps") x tcp copy (target >= 0.5; includes process start, DHT lookup, fsync)"
