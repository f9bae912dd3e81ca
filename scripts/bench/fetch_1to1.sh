#!/usr/bin/env bash
# fetch_1to1: one seeder daemon, one `shoal get` (no daemon), a 1 GiB model
# on loopback, against a plain TCP copy file→file (with fsync) of the same
# bytes in the same run. Target: >= 0.7. With --kubo, IPFS Kubo 0.43.1
# (built once from the Go module proxy into a cache folder) moves the same
# file between two of its nodes too, added with 1 MiB raw leaves. Target:
# shoal >= 4 x Kubo.
#   scripts/bench/fetch_1to1.sh [--kubo] [MiB]
KUBO_RUN=
if [ "${1:-}" = --kubo ]; then
	KUBO_RUN=1
	shift
	. "$(dirname "$0")/kubo.sh"
	# Built before the benchmark enters its namespace (no module proxy there).
	[ -n "${SHOAL_NETNS:-}" ] || kubo_build
	set -- --kubo "$@"
fi
source "$(dirname "$0")/lib.sh"
[ -n "$KUBO_RUN" ] && shift
MIB=${1:-1024}
build
warm $((MIB * 3))
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1
BYTES=$(du -sb "$WORK/model" | cut -f1)
ONE="$WORK/model/model.safetensors"
cat "$WORK"/model/*.safetensors >/dev/null 2>&1 || true
tcp=$(tcp_baseline "$ONE")
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
echo "shoal get 1 seeder:         $best MB/s = $(ratio "$best" "$tcp") x tcp copy (target >= 0.7)"
if [ -n "$KUBO_RUN" ]; then
	# The largest file of the model, as one Kubo file: 1 MiB raw leaves.
	KBYTES=$(stat -c %s "$ONE")
	kubo_node kseed
	SEEDADDR=$KADDR
	KCID=$(IPFS_PATH="$WORK/kseed" "$KUBO" add -Q --raw-leaves --chunker=size-1048576 --pin=true "$ONE")
	kbest=0
	for i in 1 2; do
		kubo_node "kget$i"
		IPFS_PATH="$WORK/kget$i" "$KUBO" swarm connect "$SEEDADDR" >/dev/null
		t0=$(now)
		IPFS_PATH="$WORK/kget$i" timeout 600 "$KUBO" get "$KCID" -o "$WORK/kout$i" >/dev/null 2>&1
		sync -f "$WORK/kout$i" 2>/dev/null || sync
		m=$(mbps "$KBYTES" "$(since "$t0")")
		kbest=$(awk -v a="$kbest" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
		cmp "$ONE" "$WORK/kout$i"
		rm -rf "$WORK/kout$i"
	done
	# Shoal's rate over the same single file, for a like-for-like ratio.
	echo "kubo $KUBO_VERSION get 1 seeder: $kbest MB/s (1 MiB raw leaves, file of $KBYTES bytes)"
	echo "shoal / kubo:               $(ratio "$best" "$kbest") x (target >= 4)"
fi
