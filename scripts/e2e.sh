#!/usr/bin/env bash
# End-to-end test with real processes: first the README quickstart exactly
# as typed, with default settings; then a bootstrap daemon, a seeding
# daemon, a `shoal get` with no daemon that knows only the bootstrap
# address, and the refusals (corrupt peer, bad CID, unsafe paths, second
# daemon, API without token). It runs in a network namespace of its own
# holding only loopback (scripts/netns.sh): default daemons listen on every
# interface and look for LAN peers by multicast, and nothing of that may
# leave this machine. Ends with "N passed, N failed".
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SHOAL_NETNS:-}" ]; then
	(cd "$REPO" && go mod download) || exit 1 # the namespace has no network
	# The real Hugging Face client, from the npm registry, for the same reason.
	if [ ! -d "$REPO/scripts/hfclient/node_modules/@huggingface/hub" ]; then
		(cd "$REPO/scripts/hfclient" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null) || exit 1
	fi
	. "$REPO/scripts/netns.sh"
	run_isolated bash "$0" "$@"
	exit
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-e2e.XXXXXX")
PIDS=()
pass=0
fail=0

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }
check() { # check NAME CMD...: passes when CMD succeeds
	local name=$1; shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

echo "# building"
(cd "$REPO" && go build -o "$WORK/bin/shoal" ./cmd/shoal && go build -o "$WORK/bin/genmodel" ./scripts/genmodel &&
	go build -o "$WORK/bin/hostile" ./scripts/hostile) || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
SHOAL="$WORK/bin/shoal"
LOOP=/ip4/127.0.0.1/tcp/0

# start_daemon NAME [ARGS...]: runs a daemon on home $WORK/NAME and waits,
# at most 30 s, for its API.
start_daemon() {
	local name=$1; shift
	"$SHOAL" --home "$WORK/$name" daemon --listen $LOOP --dht-mode server "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.log" &
	PIDS+=($!)
	for _ in $(seq 300); do
		if "$SHOAL" --home "$WORK/$name" id --json 2>/dev/null | grep -q '"daemon_running": true'; then
			return 0
		fi
		sleep 0.1
	done
	echo "daemon $name did not start:"; cat "$WORK/$name.log"
	return 1
}

tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

echo "# README quickstart, as typed, with default settings"
# Each "machine" is a home of its own (SHOAL_HOME, as documented); the
# commands are the README's, with nothing added but -o's folder.
"$WORK/bin/genmodel" "$WORK/my-model" 24 9 >/dev/null
(
	export PATH="$WORK/bin:$PATH" SHOAL_HOME="$WORK/qs-seed"
	cd "$WORK"
	shoal daemon >"$WORK/qs-daemon.out" 2>"$WORK/qs-daemon.log" &
	echo $! >"$WORK/qs-daemon.pid"
	# A person types the next line long after the daemon took its home; a
	# script must wait that long (the index lock), not for the API: add
	# then finds a daemon still starting, and waits for it.
	for _ in $(seq 100); do
		[ -e "$SHOAL_HOME/index.db" ] && ! flock -n "$SHOAL_HOME/index.db" true 2>/dev/null && break
		sleep 0.05
	done
	shoal add ./my-model >"$WORK/qs-add.out" 2>"$WORK/qs-add.err"
	echo "add: $?" >"$WORK/qs-add.rc"
	shoal id >"$WORK/qs-id.out"
)
PIDS+=("$(cat "$WORK/qs-daemon.pid")")
check "quickstart: add right after 'shoal daemon &' succeeds" grep -q 'add: 0' "$WORK/qs-add.rc"
check "quickstart: add went through the daemon" grep -q "daemon keeps trying" "$WORK/qs-add.out"
QCID=$(tail -1 "$WORK/qs-add.out")
check "quickstart: add prints the CID on its last line" grep -q '^bafyrei' <<<"$QCID"
QADDR=$(grep -o '/ip4/[^ ]*/tcp/4001/p2p/[^ ]*' "$WORK/qs-id.out" | head -1)
check "quickstart: shoal id gives a TCP address on the default port" test -n "$QADDR"
(
	export PATH="$WORK/bin:$PATH" SHOAL_HOME="$WORK/qs-get"
	cd "$WORK"
	shoal get "$QCID" -o ./my-model-copy --bootstrap "$QADDR" >"$WORK/qs-get.out" 2>"$WORK/qs-get.err"
)
check "quickstart: get with no daemon, default settings, exits 0" test $? -eq 0
check "quickstart: fetched model is byte-identical" diff <(tree_sums "$WORK/my-model") <(tree_sums "$WORK/my-model-copy")
SHOAL_HOME="$WORK/qs-seed" "$SHOAL" status --json >"$WORK/qs-status.json" 2>"$WORK/qs-status.err"
check "quickstart: status --json answers" test $? -eq 0
check "quickstart: status shows the LAN DHT serving" grep -A2 '"lan"' "$WORK/qs-status.json" | grep -q '"mode": "server"'
check "quickstart: status lists the model's announce" grep -q "\"root\": \"$QCID\"" "$WORK/qs-status.json"
check "quickstart: status counts bytes served" grep -q '"bytes_served": [1-9]' "$WORK/qs-status.json"
SHOAL_HOME="$WORK/qs-seed" "$SHOAL" status >"$WORK/qs-status.txt" 2>&1
check "quickstart: status prints reachability" grep -q '^reachability' "$WORK/qs-status.txt"

echo "# daemons"
start_daemon boot || exit 1
BOOT=$("$SHOAL" --home "$WORK/boot" id --json | grep -o '"/ip4/127.0.0.1/tcp/[^"]*"' | head -1 | tr -d '"')
echo "bootstrap: $BOOT"
start_daemon seed --bootstrap "$BOOT" || exit 1
SEED_PID=${PIDS[-1]}

echo "# add and get"
"$WORK/bin/genmodel" "$WORK/model" 64 1
CID=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/model")
echo "model CID: $CID"
check "add prints a CIDv1 dag-cbor root" grep -q '^bafyrei' <<<"$CID"
"$SHOAL" --home "$WORK/getter" get "$CID" -o "$WORK/out" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get.out" 2>"$WORK/get.err"
check "get with no daemon exits 0" test $? -eq 0
cat "$WORK/get.out"
check "fetched tree is byte-identical (sha256sum)" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out")
check "no temporary files or fetch state left" test -z "$(find "$WORK/out" -name '*.shoal-part' -o -name .shoal-fetch)"
TOTAL=$(grep -o '[0-9]* chunks moved' "$WORK/get.out" | cut -d' ' -f1)
check "getter lists the fetched model" grep -q "$CID" <("$SHOAL" --home "$WORK/getter" ls)
check "verify of the fetched model passes" "$SHOAL" --home "$WORK/getter" verify "$CID"
check "pickle file is marked in ls" grep -q 'extra.bin.*pickle' <("$SHOAL" --home "$WORK/getter" ls "$CID")

echo "# refusals"
expect_fail() { # expect_fail NAME PATTERN CMD...: CMD must exit non-zero with PATTERN on stderr
	local name=$1 pat=$2; shift 2
	if "$@" >"$WORK/last.out" 2>"$WORK/last.err"; then
		bad "$name (exit 0)"
	elif grep -qi -- "$pat" "$WORK/last.err"; then
		ok "$name"
	else
		bad "$name (stderr: $(head -c 300 "$WORK/last.err"))"
	fi
}
expect_fail "malformed CID refused" "malformed CID" "$SHOAL" --home "$WORK/getter" get not-a-cid -o "$WORK/x1"
expect_fail "CIDv0 refused" "not allowed" "$SHOAL" --home "$WORK/getter" get QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB -o "$WORK/x2"
# A second daemon asking for a port another holds: refused at start.
"$SHOAL" --home "$WORK/port1" daemon --listen /ip4/127.0.0.1/tcp/4777 >"$WORK/port1.out" 2>&1 &
PORT1=$!
for _ in $(seq 100); do grep -q 'daemon ready' "$WORK/port1.out" 2>/dev/null && break; sleep 0.1; done
expect_fail "a second daemon on a taken port is refused" "port 4777 is taken" timeout 20 "$SHOAL" --home "$WORK/port2" daemon --listen /ip4/127.0.0.1/tcp/4777
kill -INT $PORT1 2>/dev/null; wait $PORT1 2>/dev/null
check "version names the exchange protocol" grep -q '/shoal/xfer/' <("$SHOAL" version)
check "--version answers" grep -q '^shoal ' <("$SHOAL" --version)
mkdir -p "$WORK/typo" && "$SHOAL" --home "$WORK/typo" init >/dev/null 2>&1
check "init writes a commented config.toml" grep -q '^# Disk budget' "$WORK/typo/config.toml"
printf "listen = ['/ip4/127.0.0.1/tcp/0']\nboostrap = []\n" >"$WORK/typo/config.toml"
expect_fail "a config with a mistyped key is refused, naming it and its line" 'line 2: unknown key "boostrap"' timeout 20 "$SHOAL" --home "$WORK/typo" daemon
mkdir -p "$WORK/oldhome" && "$SHOAL" --home "$WORK/oldhome" init >/dev/null 2>&1 && rm "$WORK/oldhome/config.toml"
printf '{"listen": ["/ip4/127.0.0.1/tcp/0"], "storage_max": "5GB"}\n' >"$WORK/oldhome/config.json"
check "a home with a config.json is moved to config.toml, values kept" bash -c '"$0" --home "$1" ls >/dev/null && grep -q "^storage_max = .5GB." "$1/config.toml" && test -e "$1/config.json.migrated"' "$SHOAL" "$WORK/oldhome"
# verify after deleting a file of the model: non-zero, and no "match"
cp -r "$WORK/model" "$WORK/model-del"
DCID=$("$SHOAL" --home "$WORK/deleter" add --quiet "$WORK/model-del" 2>/dev/null)
rm -f "$WORK/model-del/config.json"
expect_fail "verify after deleting a file fails, saying so" "not held intact" "$SHOAL" --home "$WORK/deleter" verify "$DCID"
check "verify after deleting a file never says the bytes match" bash -c '! grep -q "match the CID" "$0"' "$WORK/last.out"
NOBODY=bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku
expect_fail "unprovided CID times out" "no providers found" \
	"$SHOAL" --home "$WORK/getter" get "$NOBODY" -o "$WORK/x3" --bootstrap "$BOOT" --listen $LOOP --timeout 3s
mkdir -p "$WORK/full" && echo mine >"$WORK/full/notes.txt"
expect_fail "non-empty output folder refused" "not empty" "$SHOAL" --home "$WORK/getter" get "$CID" -o "$WORK/full"
check "get into the folder it already fetched is a no-op" "$SHOAL" --home "$WORK/getter" get "$CID" -o "$WORK/out"
expect_fail "second daemon on one home refused" "another shoal process" "$SHOAL" --home "$WORK/seed" daemon --listen $LOOP
expect_fail "non-loopback API address refused" "loopback" "$SHOAL" --home "$WORK/other" daemon --listen $LOOP --api 0.0.0.0:0

API=$(cat "$WORK/seed/api")
check "API without token gets 401" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$API/v1/ls")" = 401
check "API with a browser Origin gets 403" test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$WORK/seed/api.token")" -H 'Origin: http://evil.example' "http://$API/v1/ls")" = 403
check "API with a foreign Host gets 421" test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$WORK/seed/api.token")" -H 'Host: evil.example' "http://$API/v1/ls")" = 421
check "API token file is owner-only" test "$(stat -c %a "$WORK/seed/api.token")" = 600

echo "# a seeder whose file rotted (threat 22): it never serves the bad chunk"
start_daemon evil --bootstrap "$BOOT" || exit 1
"$WORK/bin/genmodel" "$WORK/model2" 8 2
CID2=$("$SHOAL" --home "$WORK/evil" add --quiet "$WORK/model2")
F="$WORK/model2/model.safetensors"
TS=$(stat -c %y "$F")
printf '\xff\xff\xff\xff' | dd of="$F" bs=1 seek=2000000 conv=notrunc status=none
touch -d "$TS" "$F"
expect_fail "rotted seeder: the chunk is refused at the seeder, not sent" "cannot serve block" \
	"$SHOAL" --home "$WORK/getter" get "$CID2" -o "$WORK/out2" --bootstrap "$BOOT" --listen $LOOP
check "rotted seeder: its rot counted in its status" grep -q '"verify_failures": [1-9]' <("$SHOAL" --home "$WORK/evil" status --json)
check "rotted seeder: corrupted file never written" test ! -e "$WORK/out2/model.safetensors"
check "rotted seeder: verified part kept for resume" test -d "$WORK/out2/.shoal-fetch"

echo "# a corrupt copy beside an honest one"
cp -a "$WORK/model" "$WORK/modelcopy"
CIDC=$("$SHOAL" --home "$WORK/evil" add --quiet "$WORK/modelcopy")
check "corrupt copy has the same CID" test "$CIDC" = "$CID"
F="$WORK/modelcopy/model.safetensors"
TS=$(stat -c %y "$F")
for off in 100 3000000 20000000 50000000; do
	printf '\x5a\xa5' | dd of="$F" bs=1 seek=$off conv=notrunc status=none
done
touch -d "$TS" "$F"
"$SHOAL" --home "$WORK/getter2" get "$CID" -o "$WORK/out3" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get3.out" 2>"$WORK/get3.err"
check "get beside a corrupt seeder exits 0" test $? -eq 0
check "get beside a corrupt seeder is byte-identical" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out3")

echo "# two stalling peers beside the honest seeder and the corrupt copy (threat 25)"
# Each announces the root, answers have-maps "complete", and never sends
# a byte of it.
for k in 1 2; do
	"$WORK/bin/hostile" --bootstrap "$BOOT" --stall "$CID" >"$WORK/stall$k.out" 2>"$WORK/stall$k.log" &
	PIDS+=($!)
done
for _ in $(seq 300); do [ -s "$WORK/stall1.out" ] && [ -s "$WORK/stall2.out" ] && break; sleep 0.1; done
check "stallers are up and announced" test -s "$WORK/stall1.out" -a -s "$WORK/stall2.out"
"$SHOAL" --home "$WORK/getter7" get "$CID" -o "$WORK/out7" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get7.out" 2>"$WORK/get7.err"
check "get beside two stallers exits 0" test $? -eq 0
check "get beside two stallers is byte-identical" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out7")
grep '^fetched' "$WORK/get7.out"

echo "# a symlink out of an added folder (threat 26)"
mkdir -p "$WORK/linked"
cp "$WORK/model/config.json" "$WORK/linked/"
echo "not for sharing" >"$WORK/secret.txt"
ln -s "$WORK/secret.txt" "$WORK/linked/tokenizer.json"
"$SHOAL" --home "$WORK/seed" add "$WORK/linked" >"$WORK/link.out" 2>"$WORK/link.err"
check "add through the daemon exits 0" test $? -eq 0
check "the link out is named as skipped" grep -q 'skipped tokenizer.json' "$WORK/link.err"
CIDL=$(tail -1 "$WORK/link.out")
check "the link out is not in the model" test -z "$("$SHOAL" --home "$WORK/seed" ls "$CIDL" | grep tokenizer.json)"

echo "# 10,000 small files under ulimit -n 1024 (threat 31)"
for i in $(seq 0 9999); do
	d="$WORK/many/d$((i % 50))"
	[ "$i" -lt 50 ] && mkdir -p "$d"
	printf 'file %05d\n' "$i" >"$d/f$i.txt"
done
CIDM=$("$SHOAL" --home "$WORK/seed" add --quiet "$WORK/many")
(
	ulimit -n 1024
	"$SHOAL" --home "$WORK/getter8" get "$CIDM" -o "$WORK/out8" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get8.out" 2>"$WORK/get8.err"
)
check "10,000 files under ulimit -n 1024: get exits 0" test $? -eq 0
check "10,000 files: byte-identical" diff <(tree_sums "$WORK/many") <(tree_sums "$WORK/out8")
grep '^fetched' "$WORK/get8.out"

echo "# kill -9 and resume"
"$SHOAL" --home "$WORK/getter3" get "$CID" -o "$WORK/out4" --bootstrap "$BOOT" --listen $LOOP --max-download 16MB/s >/dev/null 2>&1 &
KP=$!
# Kill it once its progress log holds something (at most 15 s).
for _ in $(seq 150); do [ -s "$WORK/out4/.shoal-fetch/done" ] && break; sleep 0.1; done
sleep 0.3
kill -9 $KP 2>/dev/null
wait $KP 2>/dev/null
check "killed get left a partial fetch" test -s "$WORK/out4/.shoal-fetch/done"
"$SHOAL" --home "$WORK/getter3" --json get "$CID" -o "$WORK/out4" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get4.out" 2>"$WORK/get4.err"
check "resumed get exits 0" test $? -eq 0
RES=$(tail -1 "$WORK/get4.out")
MOVED=$(grep -o '"chunks":[0-9]*' <<<"$RES" | head -1 | cut -d: -f2)
RESUMED=$(grep -o '"resumed":[0-9]*' <<<"$RES" | head -1 | cut -d: -f2)
echo "full fetch moved $TOTAL chunks; the resumed one moved $MOVED and found $RESUMED done"
check "resume moved only what was missing" test -n "$MOVED" -a "${RESUMED:-0}" -gt 0 -a $((MOVED + RESUMED)) -eq "$TOTAL"
check "resumed tree is byte-identical" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out4")
check "resume cleaned up" test -z "$(find "$WORK/out4" -name '*.shoal-part' -o -name .shoal-fetch)"

"$SHOAL" --home "$WORK/getter3" get "$CID" -o "$WORK/out4" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get4b.out" 2>&1
check "a re-run of a complete fetch says so, moving nothing" grep -q '^already complete' "$WORK/get4b.out"

"$SHOAL" --home "$WORK/getter10" get "$CID" -o "$WORK/out10" --bootstrap "$BOOT" --listen $LOOP --max-download 4MB/s >/dev/null 2>"$WORK/get10.err" &
INTP=$!
for _ in $(seq 100); do [ -d "$WORK/out10/.shoal-fetch" ] && break; sleep 0.1; done
sleep 0.5
kill -INT $INTP
wait $INTP
check "Ctrl-C on get says the same command resumes" grep -q 'interrupted; run the same command again to resume' "$WORK/get10.err"

echo "# progress without a terminal"
"$SHOAL" --home "$WORK/getter9" get "$CID" -o "$WORK/out9" --bootstrap "$BOOT" --listen $LOOP --max-download 8MB/s >"$WORK/get9.out" 2>"$WORK/get9.err"
check "a get whose stderr is not a terminal prints progress lines" grep -q '^fetching: .* of .*%' "$WORK/get9.err"
grep '^fetching:' "$WORK/get9.err" | head -2

echo "# a planted fetch state (threat 24)"
# As a local user sharing the folder could: the target root, every file
# logged as done (in the old log format, and in the current one with the
# size and a whole-second mtime), and files of the right sizes full of
# 'E'. The fetch must write the model's bytes. (A plant by another user
# with exact mtimes is in the Go tests: it needs root outside this
# namespace.)
P="$WORK/planted"
mkdir -p "$P/.shoal-fetch"
echo "$CID" >"$P/.shoal-fetch/root"
n=0
while IFS= read -r -d '' f; do
	rel=${f#"$WORK/model"/}
	mkdir -p "$(dirname "$P/$rel")"
	head -c "$(stat -c %s "$f")" /dev/zero | tr '\0' E >"$P/$rel"
	echo "f $n" >>"$P/.shoal-fetch/done"
	echo "f $n $(stat -c %s "$P/$rel") $(stat -c %Y "$P/$rel")000000000" >>"$P/.shoal-fetch/done"
	n=$((n + 1))
done < <(find "$WORK/model" -type f -print0)
"$SHOAL" --home "$WORK/getter6" get "$CID" -o "$P" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get6.out" 2>"$WORK/get6.err"
check "planted state: get exits 0" test $? -eq 0
check "planted state: the model's bytes, not the planted ones" diff <(tree_sums "$WORK/model") <(tree_sums "$P")

echo "# SIGTERM to a daemon in the middle of a fetch"
start_daemon term --bootstrap "$BOOT" --max-download 16MB/s || exit 1
TERM_PID=${PIDS[-1]}
"$SHOAL" --home "$WORK/term" get "$CID" -o "$WORK/out11" -q >/dev/null 2>&1 &
GP=$!
for _ in $(seq 150); do [ -s "$WORK/out11/.shoal-fetch/done" ] && break; sleep 0.1; done
T0=$SECONDS
kill -TERM "$TERM_PID"
for _ in $(seq 100); do kill -0 "$TERM_PID" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM stops the daemon within 10 s ($((SECONDS - T0)) s)" bash -c '! kill -0 "$0" 2>/dev/null' "$TERM_PID"
wait "$TERM_PID"
check "... and it exits 0" test $? -eq 0
wait $GP 2>/dev/null
check "... removing its API file" test ! -e "$WORK/term/api"
check "its index opens afterwards" bash -c '"$0" --home "$1" ls >/dev/null' "$SHOAL" "$WORK/term"
start_daemon term --bootstrap "$BOOT" || exit 1
"$SHOAL" --home "$WORK/term" get "$CID" -o "$WORK/out11" -q >/dev/null 2>"$WORK/get11.err"
check "after a restart the same get completes" test $? -eq 0
check "... byte-identical" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out11")
kill -INT "${PIDS[-1]}"

echo "# kill -9 at random points"
# Every file at its final name must verify after each kill; temporary
# files and the progress log are the only other things left.
final_ok() {
	local out=$1 rel
	while IFS= read -r -d '' f; do
		rel=${f#"$out"/}
		case "$rel" in .shoal-fetch/*|*.shoal-part) continue ;; esac
		cmp -s "$f" "$WORK/model/$rel" || { echo "bad final file after kill: $rel"; return 1; }
	done < <(find "$out" -type f -print0)
}
kills_ok=1
for delay in 0.3 0.8 0.5 1.1 0.6; do
	"$SHOAL" --home "$WORK/getter5" get "$CID" -o "$WORK/out5" --bootstrap "$BOOT" --listen $LOOP --max-download 12MB/s >/dev/null 2>&1 &
	KP=$!
	sleep $delay
	kill -9 $KP 2>/dev/null
	wait $KP 2>/dev/null
	final_ok "$WORK/out5" || kills_ok=0
done
check "after each of 5 kills, every final file verifies" test $kills_ok -eq 1
"$SHOAL" --home "$WORK/getter5" --json get "$CID" -o "$WORK/out5" --bootstrap "$BOOT" --listen $LOOP >"$WORK/get5.out" 2>"$WORK/get5.err"
check "the run after the kills completes" test $? -eq 0
RES=$(tail -1 "$WORK/get5.out")
MOVED=$(grep -o '"chunks":[0-9]*' <<<"$RES" | head -1 | cut -d: -f2)
RESUMED=$(grep -o '"resumed":[0-9]*' <<<"$RES" | head -1 | cut -d: -f2)
check "the last run moved only what was missing ($MOVED moved, $RESUMED there)" test $((MOVED + RESUMED)) -eq "$TOTAL"
check "byte-identical after the kills, nothing else left" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/out5")

echo "# publishing and trust"
"$SHOAL" --home "$WORK/seed" publish llama "$CID" >"$WORK/pub.out" 2>"$WORK/pub.err"
check "publish on the seeding daemon" grep -q "published .*/llama -> $CID (sequence 1)" "$WORK/pub.out"
SEEDKEY=$("$SHOAL" --home "$WORK/seed" key list --json | grep -o '"id": "[^"]*"' | head -1 | cut -d'"' -f4)
"$SHOAL" --home "$WORK/fresh" trust add alice "$SEEDKEY"
"$SHOAL" --home "$WORK/fresh" resolve alice/llama --bootstrap "$BOOT" >"$WORK/res.out" 2>"$WORK/res.err"
check "a fresh node resolves alice/llama to the CID" test "$(head -1 "$WORK/res.out")" = "$CID"
"$SHOAL" --home "$WORK/fresh" get alice/llama -o "$WORK/byname" --bootstrap "$BOOT" --listen $LOOP >"$WORK/byname.out" 2>"$WORK/byname.err"
check "get by name exits 0" test $? -eq 0
check "get by name is byte-identical" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/byname")
check "get by name says who signed" grep -q "signed by alice ($SEEDKEY) as llama" "$WORK/byname.out"
expect_fail "a CID the publisher did not sign is refused" "not signed by the required publisher" \
	"$SHOAL" --home "$WORK/fresh" get "$CID2" -o "$WORK/unsigned" --bootstrap "$BOOT" --listen $LOOP --publisher alice
check "nothing written for the refused CID" test ! -e "$WORK/unsigned"
expect_fail "an unknown petname is refused" "unknown publisher" "$SHOAL" --home "$WORK/fresh" get bob/llama -o "$WORK/x9"

echo "# a disk that fills during a fetch (threat 19)"
# A daemon whose output folder is a small tmpfs, in a mount namespace of
# its own (as root only): the fetch stops with a clear error and keeps
# what it verified, the daemon keeps serving, and once space is freed the
# same command completes without a restart.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	mkdir -p "$WORK/small"
	unshare -m --propagation private bash -c '
		mount -t tmpfs -o size=96m tmpfs "$1" &&
		head -c $((56 << 20)) /dev/zero >"$1/filler" &&
		exec "$2" --home "$3" daemon --listen "$4" --dht-mode server --bootstrap "$5"' _ \
		"$WORK/small" "$SHOAL" "$WORK/diskfull" "$LOOP" "$BOOT" >"$WORK/diskfull.out" 2>"$WORK/diskfull.log" &
	FULL_PID=$!
	PIDS+=($FULL_PID)
	for _ in $(seq 300); do
		"$SHOAL" --home "$WORK/diskfull" id --json 2>/dev/null | grep -q '"daemon_running": true' && break
		sleep 0.1
	done
	"$SHOAL" --home "$WORK/diskfull" get "$CID" -o "$WORK/small/out" -q >"$WORK/full1.out" 2>"$WORK/full1.err"
	check "disk full: the get fails" test $? -ne 0
	check "disk full: the error says so" grep -qi "no space left" "$WORK/full1.err"
	echo "     $(tail -1 "$WORK/full1.err")"
	check "disk full: the daemon keeps running and answering" bash -c '"$0" --home "$1" status >/dev/null' "$SHOAL" "$WORK/diskfull"
	check "disk full: nothing recorded as held" bash -c '! "$0" --home "$1" ls | grep -q "$2"' "$SHOAL" "$WORK/diskfull" "$CID"
	nsenter -t "$FULL_PID" -m rm "$WORK/small/filler"
	"$SHOAL" --home "$WORK/diskfull" get "$CID" -o "$WORK/small/out" -q >"$WORK/full2.out" 2>"$WORK/full2.err"
	check "disk full: after freeing space, the same get completes (no restart)" test $? -eq 0
	check "disk full: and the model verifies" bash -c '"$0" --home "$1" verify -q "$2" >/dev/null' "$SHOAL" "$WORK/diskfull" "$CID"
	kill -INT "$FULL_PID"
else
	echo "skipping the disk-full case: it needs root for a tmpfs in a mount namespace"
fi

echo "# a mirror follows the publisher"
start_daemon mirror --bootstrap "$BOOT" || exit 1
MIRROR=$("$SHOAL" --home "$WORK/mirror" id --json | grep -o '"/ip4/127.0.0.1/tcp/[^"]*"' | head -1 | tr -d '"')
"$SHOAL" --home "$WORK/mirror" trust add alice "$SEEDKEY" >/dev/null
check "mirror follow alice" "$SHOAL" --home "$WORK/mirror" mirror follow alice
for _ in $(seq 300); do
	"$SHOAL" --home "$WORK/mirror" mirror ls --json 2>/dev/null | grep -q '"held": true' && break
	sleep 0.1
done
check "the mirror holds alice/llama within 30 s" bash -c '"$0" --home "$1" mirror ls --json | grep -q "\"held\": true"' "$SHOAL" "$WORK/mirror"
check "the mirror pinned it for the follow" grep -q "follow $SEEDKEY/llama" <("$SHOAL" --home "$WORK/mirror" pin ls)
check "the mirror's copy verifies" "$SHOAL" --home "$WORK/mirror" verify -q "$CID"
check "gc on the mirror keeps the followed model" bash -c '"$0" --home "$1" gc >/dev/null && "$0" --home "$1" verify -q "$2"' "$SHOAL" "$WORK/mirror" "$CID"
# Bit rot in the mirror's store copy: scrub heals it from the publisher.
RF="$WORK/mirror/store/$CID/model.safetensors"
TS=$(stat -c %y "$RF")
printf '\x00\x01' | dd of="$RF" bs=1 seek=3000000 conv=notrunc status=none
touch -d "$TS" "$RF"
"$SHOAL" --home "$WORK/mirror" scrub -q >"$WORK/scrub.out" 2>"$WORK/scrub.err"
check "scrub on the mirror exits 0 after healing rot" test $? -eq 0
check "scrub says it healed the store copy from peers" grep -q "healed from peers" "$WORK/scrub.out"
check "the healed copy verifies" bash -c '"$0" --home "$1" verify -q "$2" >/dev/null' "$SHOAL" "$WORK/mirror" "$CID"
kill -INT "$SEED_PID"
for _ in $(seq 100); do kill -0 "$SEED_PID" 2>/dev/null || break; sleep 0.1; done
check "the publisher stops on SIGINT and removes its API file" test ! -e "$WORK/seed/api"
"$SHOAL" --home "$WORK/fresh2" trust add alice "$SEEDKEY" >/dev/null
"$SHOAL" --home "$WORK/fresh2" get alice/llama -o "$WORK/frommirror" --bootstrap "$MIRROR" >"$WORK/fm.out" 2>"$WORK/fm.err"
check "with the publisher gone, a fresh get by name exits 0" test $? -eq 0
check "... and is byte-identical, served by the mirror" diff <(tree_sums "$WORK/model") <(tree_sums "$WORK/frommirror")

echo "# Hugging Face tools"
# A developer's daemon with the Hub-compatible endpoint and the gateway on
# (flags a user passes too), knowing only the mirror: the real
# @huggingface/hub client downloads alice/llama through it.
start_daemon hub --bootstrap "$MIRROR" --hf-endpoint 127.0.0.1:18385 --gateway 127.0.0.1:18386 || exit 1
"$SHOAL" --home "$WORK/hub" trust add alice "$SEEDKEY" >/dev/null
bash "$REPO/scripts/hfclient/run.sh" http://127.0.0.1:18385 alice/llama "$WORK/model" >"$WORK/hubclient.out" 2>&1
check "@huggingface/hub lists, downloads and caches alice/llama through --hf-endpoint" test $? -eq 0
sed 's/^/    hub client: /' "$WORK/hubclient.out" | tail -4
curl -s -o "$WORK/gw-config.json" -w '%{http_code}' "http://127.0.0.1:18386/models/$CID/config.json" >"$WORK/gw.code"
check "gateway /models/CID/PATH serves the file" bash -c 'grep -q 200 "$0" && cmp -s "$1" "$2"' "$WORK/gw.code" "$WORK/gw-config.json" "$WORK/model/config.json"
curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=999999999-' "http://127.0.0.1:18386/models/$CID/config.json" >"$WORK/gw.code"
check "gateway: a range past the end is 416" grep -q 416 "$WORK/gw.code"
curl -s -H 'Accept: application/vnd.ipld.raw' "http://127.0.0.1:18386/ipfs/$CID" >"$WORK/root.block"
# The CID's digest: base32 after the "b", past 4 bytes of version, codec
# and multihash header.
DIGEST=$(python3 -c 'import sys,base64;s=sys.argv[1][1:].upper();s+="="*(-len(s)%8);print(base64.b32decode(s)[4:].hex())' "$CID")
check "gateway /ipfs/ROOT answers a raw block that re-hashes to the CID" test "$(sha256sum <"$WORK/root.block" | cut -c1-64)" = "$DIGEST"
# Into the Hugging Face cache, as from_pretrained finds it offline.
export HF_HOME="$WORK/hf-home"
"$SHOAL" --home "$WORK/getter" trust add alice "$SEEDKEY" >/dev/null
"$SHOAL" --home "$WORK/getter" get alice/llama --hf-cache alice/llama --bootstrap "$MIRROR" --listen $LOOP >"$WORK/hfget.out" 2>"$WORK/hfget.err"
check "get --hf-cache exits 0" test $? -eq 0 || head -c 600 "$WORK/hfget.err"
HFREPO="$HF_HOME/hub/models--alice--llama"
COMMIT=$(cat "$HFREPO/refs/main" 2>/dev/null)
check "get --hf-cache: refs/main names a 40-hex snapshot" grep -qE '^[0-9a-f]{40}$' <<<"$COMMIT"
check "get --hf-cache: the snapshot is byte-identical" diff <(tree_sums "$WORK/model") <(cd "$HFREPO/snapshots/$COMMIT" && find -L . -type f -print0 | sort -z | xargs -0 sha256sum)
check "get --hf-cache: blobs are named by their sha256" bash -c 'cd "$0/blobs" && for b in *; do test "$(sha256sum <"$b" | cut -c1-64)" = "$b" || exit 1; done' "$HFREPO"
"$SHOAL" --home "$WORK/hfseed" add --hf-cache alice/llama >"$WORK/hfadd.out" 2>"$WORK/hfadd.err"
check "add --hf-cache alice/llama seeds the snapshot with the model's CID" grep -qx "$CID" <(tail -1 "$WORK/hfadd.out")
unset HF_HOME
# Part of a model: files by pattern, tensors by pattern.
"$SHOAL" --home "$WORK/getter" get "$CID" -o "$WORK/cfg" --include '*.json' --bootstrap "$MIRROR" --listen $LOOP >"$WORK/inc.out" 2>&1
check "get --include '*.json' writes only the JSON files" test "$(cd "$WORK/cfg" && find . -type f | sort | tr '\n' ' ')" = "./config.json ./tokenizer/tokenizer.json "
"$SHOAL" --home "$WORK/tens" get "$CID" -o "$WORK/layer1" --tensors 'layers.1.*' --bootstrap "$MIRROR" --listen $LOOP >"$WORK/tens.out" 2>&1
check "get --tensors 'layers.1.*' exits 0" test $? -eq 0
"$SHOAL" inspect "$WORK/layer1/model.safetensors" >"$WORK/tens.inspect" 2>&1
check "... and writes a valid safetensors file holding exactly that tensor" bash -c 'grep -c "^  layers\." "$0" | grep -qx 1 && grep -q "^  layers\.1\.weight" "$0"' "$WORK/tens.inspect"
expect_fail "a tensor pattern that matches nothing is refused" "matches nothing" \
	"$SHOAL" --home "$WORK/tens" get "$CID" -o "$WORK/none" --tensors 'nope.*' --bootstrap "$MIRROR" --listen $LOOP
check "... and writes nothing" test ! -e "$WORK/none"
"$SHOAL" --home "$WORK/hub" inspect "$CID" >"$WORK/inspect.out" 2>&1
check "inspect CID lists the model's tensors" grep -q '^  layers\.0\.weight' "$WORK/inspect.out"

echo "# hostile manifest"
"$WORK/bin/hostile" --bootstrap "$BOOT" --path ../../evil.txt >"$WORK/hostile.out" 2>"$WORK/hostile.log" &
PIDS+=($!)
for _ in $(seq 300); do [ -s "$WORK/hostile.out" ] && break; sleep 0.1; done
EVIL=$(head -1 "$WORK/hostile.out")
mkdir -p "$WORK/deep/er"
expect_fail "path traversal refused" "unsafe path" \
	"$SHOAL" --home "$WORK/getter" get "$EVIL" -o "$WORK/deep/er/out" --bootstrap "$BOOT" --listen $LOOP
check "path traversal: nothing written outside" test ! -e "$WORK/evil.txt" -a ! -e "$WORK/deep/evil.txt" -a ! -e "$WORK/deep/er/out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
