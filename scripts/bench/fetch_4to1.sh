#!/usr/bin/env bash
# fetch_4to1: four seeder daemons, each with upload capped at U, one
# `shoal get`. Baseline: U itself, and one capped seeder alone, measured in
# the same run. Target: >= 3.5 x U.
#   scripts/bench/fetch_4to1.sh [MiB] [U in MB/s]
source "$(dirname "$0")/lib.sh"
MIB=${1:-256}
U=${2:-25}
build
warm $((MIB * 6))
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
BYTES=$(du -sb "$WORK/model" | cut -f1)
daemon boot
BOOT=$ADDR
for i in 1 2 3 4; do
	"$SHOAL" --home "$WORK/s$i" add --quiet "$WORK/model" >"$WORK/cid" 2>/dev/null
	daemon "s$i" --bootstrap "$BOOT" --max-upload "${U}MB/s"
done
CID=$(cat "$WORK/cid")
sleep 1 # let the seeders' announcements land
t0=$(now)
"$SHOAL" --home "$WORK/g" --json get "$CID" -o "$WORK/out" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get.json" 2>/dev/null
secs=$(since "$t0")
rate=$(mbps "$BYTES" "$secs")
cmp "$WORK/model/model.safetensors" "$WORK/out/model.safetensors"
echo "fetch_4to1: $MIB MiB, 4 seeders capped at U = $U MB/s each"
echo "peers used: $(tail -1 "$WORK/get.json" | grep -o '"peer":"[^"]*","bytes":[0-9]*' | sed 's/"peer":"[^"]*\(.\{6\}\)","bytes":/…\1=/' | tr '\n' ' ')"
echo "shoal get from 4: $rate MB/s in ${secs}s = $(ratio "$rate" "$U") x U (target >= 3.5)"
