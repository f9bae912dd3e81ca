#!/usr/bin/env bash
# fetch_1to1: one seeder daemon, one `shoal get` (no daemon), a 1 GiB model
# on loopback, against a plain TCP copy file→file of the same bytes in the
# same run. Target: >= 0.5.
#   scripts/bench/fetch_1to1.sh [MiB]
source "$(dirname "$0")/lib.sh"
MIB=${1:-1024}
build
warm $((MIB * 3))
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
BYTES=$(du -sb "$WORK/model" | cut -f1)
ONE="$WORK/model/model.safetensors"
cat "$WORK"/model/* >/dev/null 2>&1 || true
tcp=0
for _ in 1 2; do
	read -r _ _ _ m < <("$WORK/bin/baseline" tcpcopy "$ONE" "$WORK/tcp.out")
	rm -f "$WORK/tcp.out"
	tcp=$(awk -v a="$tcp" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
done
CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model" 2>/dev/null)
daemon seed
best=0
for i in 1 2; do
	t0=$(now)
	"$SHOAL" --home "$WORK/g$i" get "$CID" -o "$WORK/out$i" --bootstrap "$ADDR" --listen $LOOP >/dev/null 2>&1
	m=$(mbps "$BYTES" "$(since "$t0")")
	best=$(awk -v a="$best" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
	cmp "$ONE" "$WORK/out$i/model.safetensors"
	rm -rf "$WORK/out$i" "$WORK/g$i"
done
echo "fetch_1to1: $MIB MiB, $(nproc) cores"
echo "baseline tcp copy loopback: $tcp MB/s"
echo "shoal get 1 seeder:         $best MB/s = $(ratio "$best" "$tcp") x tcp copy (target >= 0.5)"
