#!/usr/bin/env bash
# fanout: one seeder daemon with upload capped at U, N `shoal get`
# processes (no daemons) started together. Baseline: size/U, the time one
# fetcher alone needs from the seeder. Target: the last fetcher done within
# 1.5 x size/U (with no swarming it would be N x).
#   scripts/bench/fanout.sh [MiB] [U in MB/s] [N]
source "$(dirname "$0")/lib.sh"
MIB=${1:-256}
U=${2:-50}
N=${3:-8}
build
warm $((MIB * (N + 2)))
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
BYTES=$(du -sb "$WORK/model" | cut -f1)
daemon boot
BOOT=$ADDR
CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model" 2>/dev/null)
daemon seed --bootstrap "$BOOT" --max-upload "${U}MB/s"
sleep 1
t0=$(now)
for i in $(seq "$N"); do
	( "$SHOAL" --home "$WORK/g$i" --json get "$CID" -o "$WORK/out$i" --bootstrap "$BOOT" --listen $LOOP \
		>"$WORK/g$i.json" 2>"$WORK/g$i.err"; echo "$(since "$t0")" >"$WORK/g$i.time" ) &
done
wait_all() { for i in $(seq "$N"); do while [ ! -s "$WORK/g$i.time" ]; do sleep 0.1; done; done; }
wait_all
last=0
for i in $(seq "$N"); do
	t=$(cat "$WORK/g$i.time")
	last=$(awk -v a="$last" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
	cmp "$WORK/model/model.safetensors" "$WORK/out$i/model.safetensors" || echo "fetcher $i: WRONG BYTES"
done
SEEDID=$(sed -n 's/^peer //p' "$WORK/seed.out" | head -1)
from_seed=$(cat "$WORK"/g*.json | grep -o "\"peer\":\"$SEEDID\",\"bytes\":[0-9]*" | awk -F: '{ s += $NF } END { print s + 0 }')
ideal=$(awk -v b="$BYTES" -v u="$U" 'BEGIN { printf "%.3f", b / (u * 1e6) }')
echo "fanout: $MIB MiB, seeder capped at U = $U MB/s, $N fetchers started together, $(nproc) cores"
echo "baseline size/U: ${ideal}s"
echo "seeder sent $(ratio "$from_seed" "$BYTES") x the model; fetchers sent each other the rest"
echo "last fetcher done: ${last}s = $(ratio "$last" "$ideal") x size/U (target <= 1.5; no swarming: $N)"
