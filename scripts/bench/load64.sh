#!/usr/bin/env bash
# load64: one mirror daemon (Prometheus metrics on loopback) holding a
# model, and N `shoal get` processes (no daemons) started at once against
# it, bootstrapped from the mirror alone. Every fetcher must exit 0 with
# every file byte-identical (cmp). Reports the aggregate delivered rate
# against a plain TCP copy in the same run, when the last fetcher was done,
# the mirror's peak RSS (target < 512 MiB) and goroutines (peak, and once
# the fetchers are gone), sampled every 0.5 s from /metrics and
# /proc/PID/status, and how much of the model the mirror sent itself (the
# rest the fetchers swapped).
#   scripts/bench/load64.sh
#   SIZE_MB=256 FETCHERS=64 TIMEOUT=1200 SETTLE=5 KEEP= scripts/bench/load64.sh
# TIMEOUT bounds each fetcher (seconds), SETTLE is how long after the last
# fetcher the "after" sample is taken, FETCH_LOG_LEVEL (info) is the
# fetchers' --log-level, KEEP=1 keeps the work folder (logs).
source "$(dirname "$0")/lib.sh"
MIB=${SIZE_MB:-256}
N=${FETCHERS:-64}
TIMEOUT=${TIMEOUT:-1200}
SETTLE=${SETTLE:-5}
FLOG=${FETCH_LOG_LEVEL:-info}

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

build
w=$((MIB * (N + 2)))
warm $((w < 8192 ? w : 8192))
"$WORK/bin/genmodel" "$WORK/model" "$MIB" 1 >/dev/null
BYTES=$(du -sb "$WORK/model" | cut -f1)
ONE="$WORK/model/model.safetensors"
(cd "$WORK/model" && find . -type f | sort) >"$WORK/files"
cat "$WORK"/model/*.safetensors >/dev/null 2>&1 || true
tcp=$(tcp_baseline "$ONE")

# The mirror: metrics on a free loopback port, read back from its log.
daemon mirror --metrics "127.0.0.1:${METRICS_PORT:-0}"
MIRROR=$ADDR
MPID=${PIDS[-1]}
MURL=
for _ in $(seq 100); do
	MURL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/metrics' "$WORK/mirror.log" | head -1 || true)
	[ -n "$MURL" ] && break
	sleep 0.1
done
[ -n "$MURL" ] || { echo "mirror: no metrics address in its log"; cat "$WORK/mirror.log"; exit 1; }
MID=$(timeout 30 "$SHOAL" --home "$WORK/mirror" id --json | sed -n 's/.*"peer_id": *"\([^"]*\)".*/\1/p' | head -1)

ta=$(now)
CID=$(timeout 600 "$SHOAL" --home "$WORK/mirror" add --quiet "$WORK/model" 2>"$WORK/add.err" | tail -1)
tadd=$(since "$ta")
grep -q '^bafy' <<<"$CID" || { echo "add failed: $CID"; cat "$WORK/add.err"; exit 1; }

# scrape: the mirror's /metrics; metric NAME: one unlabelled metric's
# value in it ("-" when absent).
scrape() { curl -s --max-time 10 "$MURL" 2>/dev/null || true; }
metric() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "-" : v) }'; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$MPID/status" 2>/dev/null || echo 0; }
# Two samplers, each every 0.5 s, with builtins but for curl (with N
# fetchers on 2 cores a forking sampler falls seconds behind), so a slow
# scrape does not hold back the /proc samples:
# proc_sample: "time Threads VmRSS VmHWM RssAnon RssFile" (kB, from
# /proc/PID/status); metrics_sample: "time answered goroutines rss_bytes
# scrape_seconds" ("-" for a metric absent; answered: within 10 s).
proc_sample() {
	local k v _ Threads=0 VmRSS=0 VmHWM=0 RssAnon=0 RssFile=0
	{ while read -r k v _; do
		case $k in Threads: | VmRSS: | VmHWM: | RssAnon: | RssFile:) printf -v "${k%:}" %s "$v" ;; esac
	done 2>/dev/null <"/proc/$MPID/status"; } 2>/dev/null || true
	echo "$EPOCHREALTIME $Threads $VmRSS $VmHWM $RssAnon $RssFile"
}
metrics_sample() {
	local k v _ t=$EPOCHREALTIME ok=0 g=- r=- d=-
	while read -r k v _; do
		case $k in
		go_goroutines) g=$v ;;
		process_resident_memory_bytes) r=$v ;;
		shoal_served_bytes_total) ok=1 ;;
		scrape_seconds) d=$v ;;
		esac
	done < <(curl -s --max-time 10 -w '\nscrape_seconds %{time_total}\n' "$MURL" 2>/dev/null)
	echo "$t $ok $g $r $d"
}
hwm_add=$(status_kb VmHWM)
# Peak RSS from here on counts the fetch, not the add's hashing.
hwm_reset=yes
echo 5 >"/proc/$MPID/clear_refs" 2>/dev/null || hwm_reset=no
for s in proc metrics; do
	(
		renice -n -10 -p "$BASHPID" >/dev/null 2>&1 || true # a measuring tool, not a competitor
		while kill -0 "$MPID" 2>/dev/null; do "${s}_sample" >>"$WORK/samples.$s"; sleep 0.5; done
	) &
	PIDS+=($!)
done
sleep 1
m0=$(scrape)
served0=$(metric shoal_served_bytes_total <<<"$m0")
pbefore=$(proc_sample)
mbefore=$(metrics_sample)

t0=$(now)
declare -A IDX
for i in $(seq "$N"); do
	timeout -k 10 "$TIMEOUT" "$SHOAL" --home "$WORK/g$i" --log-level "$FLOG" --json get "$CID" -o "$WORK/out$i" \
		--bootstrap "$MIRROR" --listen $LOOP >"$WORK/g$i.json" 2>"$WORK/g$i.err" &
	PIDS+=($!)
	IDX[$!]=$i
done
# Each fetcher is bounded by TIMEOUT, so is this loop.
declare -A RC T
left=$N
while [ "$left" -gt 0 ]; do
	pid=
	rc=0
	wait -n -p pid "${!IDX[@]}" || rc=$?
	[ -n "$pid" ] || { echo "lost track of the fetchers (wait: $rc)"; break; }
	i=${IDX[$pid]}
	unset "IDX[$pid]"
	RC[$i]=$rc
	T[$i]=$(since "$t0")
	left=$((left - 1))
done
last=$(since "$t0")
tend=$(now)
sleep "$SETTLE"
pafter=$(proc_sample)
mafter=$(metrics_sample)
m1=$(scrape)
served1=$(metric shoal_served_bytes_total <<<"$m1")

ok=0
good=0
failed=()
kill -0 "$MPID" 2>/dev/null || failed+=("mirror:exited during the run")
for i in $(seq "$N"); do
	if [ "${RC[$i]:-x}" != 0 ]; then
		failed+=("$i:exit ${RC[$i]:-?}")
		continue
	fi
	ok=$((ok + 1))
	bad=
	if ! (cd "$WORK/out$i" && find . -type f | sort) | cmp -s - "$WORK/files"; then
		bad="other files"
	else
		while read -r f; do
			cmp -s "$WORK/model/$f" "$WORK/out$i/$f" || { bad="bytes differ in $f"; break; }
		done <"$WORK/files"
	fi
	if [ -n "$bad" ]; then failed+=("$i:$bad"); else good=$((good + 1)); fi
	rm -rf "$WORK/out$i"
done

times=$(for i in "${!T[@]}"; do echo "${T[$i]}"; done | sort -n)
first=$(head -1 <<<"$times")
median=$(awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' <<<"$times")
agg=$(mbps "$((N * BYTES))" "$last")
from_mirror=$(cat "$WORK"/g*.json | grep -o "\"peer\":\"$MID\",\"bytes\":[0-9]*" | awk -F: '{ s += $NF } END { print s + 0 }')
refetched=$(cat "$WORK"/g*.json | grep -o '"refetched":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }')
if [ "$served1" != - ] && [ "$served0" != - ]; then
	served=$(awk -v a="$served1" -v b="$served0" 'BEGIN { printf "%.0f", a - b }')
else
	served=$from_mirror
fi

# Peaks over the samples taken while the fetchers ran.
read -r n_p thpeak rsspeak < <(awk -v a="$t0" -v b="$tend" '$1 >= a && $1 <= b {
	n++; if ($2 > t) t = $2; if ($3 > m) m = $3
} END { printf "%d %d %d\n", n, t, m }' "$WORK/samples.proc")
read -r n_m n_ok n_rss gpeak mrss dmax < <(awk -v a="$t0" -v b="$tend" '$1 >= a && $1 <= b {
	n++; ok += $2; if ($5 != "-" && $5 + 0 > d) d = $5 + 0
	if ($3 != "-" && $3 + 0 > g) g = $3 + 0
	if ($4 != "-") { nr++; if ($4 / 1024 > m) m = $4 / 1024 }
} END { printf "%d %d %d %s %d %.2f\n", n, ok, nr, (g == "" ? "-" : g), m, d }' "$WORK/samples.metrics")
rsspeak=$((mrss > rsspeak ? mrss : rsspeak))
read -r _ th_before _ <<<"$pbefore"
read -r _ _ g_before _ <<<"$mbefore"
read -r _ th_after rss_after _ anon_after file_after <<<"$pafter"
read -r _ _ g_after _ <<<"$mafter"
pend=$(awk -v b="$tend" '$1 <= b { l = $0 } END { print l }' "$WORK/samples.proc")
read -r _ _ rss_end _ anon_end file_end <<<"$pend"
hwm=$(status_kb VmHWM)
hwm=${hwm:-0}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
if [ "$gpeak" != - ]; then
	gl="goroutines peak $gpeak, after $g_after (before $g_before)"
else
	gl="goroutines peak $thpeak, after $th_after (before $th_before; go_goroutines is not in /metrics: these are OS threads from /proc/PID/status)"
fi
if [ "$hwm_reset" = yes ]; then
	peak=$(mib "$hwm")
	how="VmHWM over the fetch; add phase peaked at $(mib "$hwm_add") MiB"
else
	peak=$(mib "$((rsspeak > hwm ? rsspeak : hwm))")
	how="VmHWM could not be reset after the add, so it includes the add"
fi
how="$how; sampled max $(mib "$rsspeak") MiB; over ${last} s, $n_p /proc samples, $n_m scrapes, $n_ok answered (slowest ${dmax} s), $n_rss with process_resident_memory_bytes"
rssl="mirror RSS at the last fetcher $(mib "$rss_end") MiB (anon $(mib "$anon_end"), file $(mib "$file_end")), ${SETTLE} s later $(mib "$rss_after") MiB (anon $(mib "$anon_after"), file $(mib "$file_after"))"
# logsum FILE...: log messages but the per-peer "served" lines, with
# their err (peer IDs and CIDs elided), counted, most frequent first.
logsum() {
	cat "$@" 2>/dev/null | awk '{
		l = m = e = ""
		if (match($0, / level=[A-Z]+/)) l = substr($0, RSTART + 7, RLENGTH - 7)
		if (match($0, / msg=("[^"]*"|[^ ]*)/)) m = substr($0, RSTART + 5, RLENGTH - 5)
		if (match($0, / err=("[^"]*"|[^ ]*)/)) e = " err=" substr($0, RSTART + 5, RLENGTH - 5)
		if (m == "served" || m == "") next
		gsub(/12D3KooW[1-9A-HJ-NP-Za-km-z]+/, "PEER", e); gsub(/bafy[a-z2-7]+/, "CID", e)
		gsub(/tcp\/[0-9]+/, "tcp/PORT", e); gsub(/:[0-9]+/, ":PORT", e)
		c[l " " m e]++
	} END { for (k in c) print c[k] " x " k; if (!length(c)) print "0 x (none)" }' | sort -rn | head -5 | sed 's/^/    /'
}
mlog_bad=$(grep -ciE 'level=(warn|error)|"level":"(warn|error)"|panic' "$WORK/mirror.log" || true)
flog_bad=$(cat "$WORK"/g*.err | grep -ciE 'level=(warn|error)|"level":"(warn|error)"|panic|^error' || true)

echo "load64: $N fetchers, $MIB MiB model, $(nproc) cores"
echo "baseline tcp copy loopback: $tcp MB/s"
echo "aggregate: $agg MB/s delivered = $(ratio "$agg" "$tcp") x tcp copy; last fetcher done in ${last} s (first ${first} s, median ${median} s)"
echo "mirror peak RSS: $peak MiB (target < 512), $gl"
echo "  ($how)"
echo "  ($rssl)"
echo "mirror served $(awk -v b="$served" 'BEGIN { printf "%.0f", b / 1048576 }') MiB = $(ratio "$served" "$BYTES") x the model (the rest the fetchers swapped; fetchers report $(ratio "$from_mirror" "$BYTES") x from the mirror)"
echo "fetchers: $ok of $N exited 0, $good verified byte-identical, $refetched chunks re-asked after a failure; add took ${tadd} s"
echo "mirror after: peers_connected $(metric shoal_peers_connected <<<"$m1"), fetches_in_flight $(metric shoal_fetches_in_flight <<<"$m1"); warn/error log lines: mirror $mlog_bad, fetchers $flog_bad"
echo "  mirror log, but 'served' lines:"
logsum "$WORK/mirror.log"
echo "  fetcher logs ($FLOG), but 'served' lines:"
logsum "$WORK"/g*.err
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	for f in "${failed[@]}"; do
		i=${f%%:*}
		[ "$i" != mirror ] || { echo "--- mirror log (tail)"; tail -5 "$WORK/mirror.log"; continue; }
		echo "--- fetcher $i stderr (tail)"
		grep -v " msg=served " "$WORK/g$i.err" | tail -5
	done
	exit 1
fi
