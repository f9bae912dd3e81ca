#!/usr/bin/env bash
# tensors: `shoal get --tensors` of one layer of a 1 GiB model, as a
# pipeline-parallel server fetches its stage. The seeder's own count of
# bytes served (status: bytes_served, which includes the manifest and the
# header read to choose) against that layer's bytes plus the file's
# header, measured in the same run. Target: <= 1.0 x. For scale, the same
# get of the whole file.
#   scripts/bench/tensors.sh [MiB]
source "$(dirname "$0")/lib.sh"
MIB=${1:-1024}
build
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model" 2>/dev/null)
daemon seed
served() { "$SHOAL" --home "$WORK/seed" status --json | grep -o '"bytes_served": [0-9]*' | grep -o '[0-9]*$'; }
# The layer: the largest tensor, by inspect of the seeder's own copy.
"$SHOAL" --home "$WORK/seed" inspect "$CID" --json >"$WORK/inspect.json"
read -r LAYER LBYTES HDR < <(python3 -c '
import json,sys
v=json.load(open(sys.argv[1]))
f=[f for f in v["files"] if f["path"]=="model.safetensors"][0]
t=max(f["tensors"], key=lambda t: t["size"])
print(t["name"], t["size"], min(x["offset"] for x in f["tensors"]))' "$WORK/inspect.json")
s0=$(served)
"$SHOAL" --home "$WORK/g0" inspect "$CID" --bootstrap "$ADDR" --listen $LOOP >/dev/null 2>&1
INSPECT=$(($(served) - s0))
s0=$(served)
t0=$(now)
"$SHOAL" --home "$WORK/g1" get "$CID" -o "$WORK/stage" --include model.safetensors --tensors "$LAYER" --bootstrap "$ADDR" --listen $LOOP >/dev/null 2>&1
secs=$(since "$t0")
s1=$(served)
MOVED=$((s1 - s0))
"$SHOAL" inspect "$WORK/stage/model.safetensors" --json | grep -q "\"name\": \"$LAYER\"" || { echo "tensors: the output does not hold $LAYER"; exit 1; }
t0=$(now)
"$SHOAL" --home "$WORK/g2" get "$CID" -o "$WORK/whole" --include model.safetensors --bootstrap "$ADDR" --listen $LOOP >/dev/null 2>&1
wsecs=$(since "$t0")
WMOVED=$(($(served) - s1))
echo "tensors: $MIB MiB model, one tensor ($LAYER) of $LBYTES bytes, header $HDR bytes, $(nproc) cores"
echo "served for inspect (manifest + header): $INSPECT bytes"
echo "served for --tensors $LAYER: $MOVED bytes in ${secs}s = $(ratio "$MOVED" $((LBYTES + INSPECT))) x (layer + manifest + header) (target <= 1.0)"
echo "served for the whole file:   $WMOVED bytes in ${wsecs}s = $(ratio "$WMOVED" "$MOVED") x the --tensors fetch"
