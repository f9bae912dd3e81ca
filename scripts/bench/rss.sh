#!/usr/bin/env bash
# rss: peak resident memory of `shoal get` (no daemon) fetching models of
# growing size from one seeder, to show it flat in the model's size.
# Target: under 128 MiB for any size.
#   scripts/bench/rss.sh [MiB...]      (default 1024 4096)
source "$(dirname "$0")/lib.sh"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1024 4096)
build
daemon seed
for mib in "${SIZES[@]}"; do
	rm -rf "$WORK/model"
	"$WORK/bin/genmodel" "$WORK/model" "$mib" 3
	CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model" 2>/dev/null)
	/usr/bin/time -f "%M" -o "$WORK/rss" "$SHOAL" --home "$WORK/g$mib" get "$CID" -o "$WORK/out" --bootstrap "$ADDR" --listen $LOOP >/dev/null 2>&1
	cmp "$WORK/model/model.safetensors" "$WORK/out/model.safetensors"
	echo "rss: fetch of $mib MiB: peak RSS $(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/rss") MiB (target < 128)"
	rm -rf "$WORK/out" "$WORK/g$mib"
done
