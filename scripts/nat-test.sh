#!/usr/bin/env bash
# NAT traversal test with real processes in network namespaces (needs root).
#
# It builds a small private "internet" and three NATed homes:
#
#   internet (ns inet, bridge "inet", 7.7.7.0/24)
#     7.7.7.1   mirror: shoal daemon --relay-service --dht-mode server
#               --reachability public (bootstrap + relay)
#     7.7.7.11  home1 router --NAT--> 10.1.0.0/24: seed   10.1.0.2
#     7.7.7.12  home2 router --NAT--> 10.2.0.0/24: fetch  10.2.0.2
#     7.7.7.13  home3 router --NAT--> 10.3.0.0/24: lanA   10.3.0.2
#                                                  lanB   10.3.0.3
#
# 7.7.7.0/24 is used because go-multiaddr counts it as public (the
# documentation ranges and 198.18/15 are "unroutable" to it, and then hole
# punching never starts). Nothing leaves these namespaces: none of them has
# a link to the host's namespace, so no packet reaches a real network.
# Each router masquerades its LAN behind its WAN address and drops
# unsolicited inbound packets (no TCP reset), as real home routers do.
#
# Case 1 (two NATs): the seeder in home1 and the fetcher in home2 know only
# the mirror's address. The fetch must be byte-identical; the script prints
# whether the bytes came over a direct (hole-punched) connection or the
# relay, and how many bytes the relay carried.
#
# Case 2 (one LAN, no bootstrap): lanA and lanB run default daemons, find
# each other by mDNS, and lanB fetches the model by CID through its daemon.
#
# Usage:  sudo bash scripts/nat-test.sh
# Env:    SHOAL_BIN=path      use this shoal binary instead of building one
#         NAT_FETCH_DAEMON=0  case 1 fetches with a daemon-less `shoal get`
#                             instead of through a default daemon on the
#                             fetcher (a short-lived get behind NAT cannot
#                             hole-punch yet: see the comment at the fetch)
#         NAT_KEEP=1          keep the work folder (logs) after the run
# The last line is "N passed, M failed"; the exit status is non-zero when
# anything failed. Everything created (namespaces, processes, the work
# folder) is removed on exit, also on failure or Ctrl-C.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
P="shoalnat-$$-"                  # prefix of every namespace this run makes
NS_INET=${P}inet
NS_R1=${P}home1 NS_SEED=${P}seed
NS_R2=${P}home2 NS_FETCH=${P}fetch
NS_R3=${P}home3 NS_LANA=${P}lanA NS_LANB=${P}lanB
NS_SYB=${P}sybil
ALL_NS=("$NS_INET" "$NS_R1" "$NS_SEED" "$NS_R2" "$NS_FETCH" "$NS_R3" "$NS_LANA" "$NS_LANB" "$NS_SYB")
SYBIL_IP=7.7.7.50
MIRROR_IP=7.7.7.1
MODEL_MIB=64
DEADLINE=60                       # seconds, for every wait unless said otherwise
WORK=""
PIDS=()
pass=0
fail=0

# ---------------------------------------------------------------- helpers

ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }
info() { echo "     $1"; }
check() { # check NAME CMD...: passes when CMD succeeds
	local name=$1; shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}
die() { # die REASON: a fatal failure; cleanup runs from the EXIT trap
	bad "$1"
	finish
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
fails() { ! "$@" >/dev/null 2>&1; }

cleanup() {
	trap - EXIT INT TERM
	local p ns
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 50); do # at most 5 s for a clean shutdown
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	# Anything else still inside our namespaces was started by this run.
	for ns in "${ALL_NS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${NAT_KEEP:-}" = 1 ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
	fi
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# last_error FILE: the command's own error line ("shoal: ..."), else its last line.
last_error() { { grep '^shoal:' "$1" || tail -1 "$1"; } | tail -1; }

# check_fetch WHAT TREE RC ERRFILE OUT: the get exited 0, and OUT is the
# model byte for byte.
check_fetch() {
	if [ "$3" -eq 0 ]; then
		ok "$1 exits 0"
	else
		bad "$1 exits 0 (exit $3: $(last_error "$4"))"
	fi
	if [ -d "$5" ] && diff <(tree_sums "$WORK/model") <(tree_sums "$5") >/dev/null 2>&1; then
		ok "$2 is byte-identical (sha256 of every file)"
	else
		bad "$2 is byte-identical (sha256 of every file)"
	fi
}

tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# ---------------------------------------------------------------- setup

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "nat-test.sh must run as root (it creates network namespaces): sudo bash $0" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
}

# install_tools: ip, nft, plus jq (JSON), ping and nc (connectivity checks).
install_tools() {
	local need=()
	command -v ip >/dev/null || need+=(iproute2)
	command -v nft >/dev/null || need+=(nftables)
	command -v jq >/dev/null || need+=(jq)
	command -v ping >/dev/null || need+=(iputils-ping)
	command -v nc >/dev/null || need+=(netcat-openbsd)
	command -v timeout >/dev/null || need+=(coreutils)
	[ ${#need[@]} -eq 0 ] && return 0
	echo "# installing ${need[*]}"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$WORK/apt.log" 2>&1; then
		tail -5 "$WORK/apt.log"
		die "could not install ${need[*]} with apt-get"
	fi
}

build() {
	echo "# building"
	mkdir -p "$WORK/bin"
	if [ -n "${SHOAL_BIN:-}" ]; then
		cp "$SHOAL_BIN" "$WORK/bin/shoal" || die "SHOAL_BIN=$SHOAL_BIN not usable"
	else
		(cd "$REPO" && go build -o "$WORK/bin/shoal" ./cmd/shoal) || die "go build ./cmd/shoal failed"
	fi
	(cd "$REPO" && go build -o "$WORK/bin/genmodel" ./scripts/genmodel) || die "go build ./scripts/genmodel failed"
	(cd "$REPO" && go build -o "$WORK/bin/sybil" ./scripts/sybil) || die "go build ./scripts/sybil failed"
	SHOAL="$WORK/bin/shoal"
}

# new_ns NAME: a namespace with its loopback up (the daemon API is on
# 127.0.0.1 in each namespace).
new_ns() {
	ip netns add "$1" || die "ip netns add $1 failed"
	ip -n "$1" link set lo up
}

# add_router NS WAN_IP LAN_CIDR_PREFIX(e.g. 10.1.0): a home router on the
# internet bridge. Its WAN veth "wan" has WAN_IP; its LAN is a bridge "lan"
# with PREFIX.1/24; it forwards, masquerades LAN traffic going out of
# "wan", and drops every new connection coming in on "wan".
add_router() {
	local ns=$1 wan_ip=$2 lan=$3 port
	port=up${wan_ip##*.} # the veth end on the internet bridge, e.g. up11
	new_ns "$ns"
	# Cable from the router's WAN port to the internet bridge. The pair is
	# made inside the internet namespace and one end moved to the router:
	# nothing is ever created in the host's namespace.
	ip -n "$NS_INET" link add "$port" type veth peer name wan netns "$ns"
	ip -n "$NS_INET" link set "$port" master inet up
	ip -n "$ns" addr add "$wan_ip/24" dev wan
	ip -n "$ns" link set wan up
	ip -n "$ns" route add default via "$MIRROR_IP"
	# The home LAN: a bridge with the router's LAN address.
	ip -n "$ns" link add lan type bridge
	ip -n "$ns" link set lan type bridge mcast_snooping 0 # plain flooding, for mDNS
	ip -n "$ns" addr add "$lan.1/24" dev lan
	ip -n "$ns" link set lan up
	in_ns "$ns" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
	# NAT and the inbound policy of a home router. (The chain names avoid
	# "fwd", an nft keyword.)
	in_ns "$ns" nft -f - <<-'EOF' || die "nft rules for $ns failed"
		table inet shoalnat {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "wan" masquerade
			}
			chain input {
				type filter hook input priority filter; policy accept;
				iifname "wan" ct state invalid drop
				iifname "wan" ct state new drop
			}
			chain forward {
				type filter hook forward priority filter; policy accept;
				iifname "wan" ct state invalid drop
				iifname "wan" ct state new drop
			}
		}
	EOF
}

# add_host NS ROUTER_NS IP GATEWAY: a machine on the router's LAN bridge,
# with eth0 = IP/24 and a default route through the router.
add_host() {
	local ns=$1 router=$2 ip=$3 gw=$4 port
	port=h${ip##*.}
	new_ns "$ns"
	ip -n "$router" link add "$port" type veth peer name eth0 netns "$ns"
	ip -n "$router" link set "$port" master lan up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up multicast on
	ip -n "$ns" route add default via "$gw"
}

setup_topology() {
	echo "# topology (namespaces ${P}*)"
	# The internet: one bridge; the mirror lives in this namespace on it.
	new_ns "$NS_INET"
	ip -n "$NS_INET" link add inet type bridge
	ip -n "$NS_INET" addr add "$MIRROR_IP/24" dev inet
	ip -n "$NS_INET" link set inet up
	# home1: the seeder behind NAT.
	add_router "$NS_R1" 7.7.7.11 10.1.0
	add_host "$NS_SEED" "$NS_R1" 10.1.0.2 10.1.0.1
	# home2: the fetcher behind another NAT.
	add_router "$NS_R2" 7.7.7.12 10.2.0
	add_host "$NS_FETCH" "$NS_R2" 10.2.0.2 10.2.0.1
	# home3: two machines on one LAN, for the mDNS case.
	add_router "$NS_R3" 7.7.7.13 10.3.0
	add_host "$NS_LANA" "$NS_R3" 10.3.0.2 10.3.0.1
	add_host "$NS_LANB" "$NS_R3" 10.3.0.3 10.3.0.1
	ok "topology built: internet bridge, 3 NAT routers, 4 hosts"
}

# check_connectivity: both homes reach the internet, and nothing reaches
# into a home uninvited: the fetcher cannot open a connection to the
# seeder (neither its private address nor its router's public one), and
# the router drops the attempt instead of resetting it.
check_connectivity() {
	echo "# connectivity"
	check "seed reaches the mirror (ping $MIRROR_IP)" quiet in_ns "$NS_SEED" ping -c1 -W2 $MIRROR_IP
	check "fetch reaches the mirror (ping $MIRROR_IP)" quiet in_ns "$NS_FETCH" ping -c1 -W2 $MIRROR_IP
	check "lanA reaches the mirror (ping $MIRROR_IP)" quiet in_ns "$NS_LANA" ping -c1 -W2 $MIRROR_IP
	check "lanA reaches lanB on the LAN (ping 10.3.0.3)" quiet in_ns "$NS_LANA" ping -c1 -W2 10.3.0.3
	# A listener on the seeder, like a daemon's port.
	in_ns "$NS_SEED" nc -l -k 10.1.0.2 4999 >/dev/null 2>&1 &
	PIDS+=($!)
	wait_for 5 in_ns "$NS_SEED" nc -z -w1 10.1.0.2 4999
	in_ns "$NS_INET" nc -l -k $MIRROR_IP 4998 >/dev/null 2>&1 &
	PIDS+=($!)
	wait_for 5 in_ns "$NS_INET" nc -z -w1 $MIRROR_IP 4998
	check "seed opens a TCP connection to the mirror" quiet in_ns "$NS_SEED" nc -z -w2 $MIRROR_IP 4998
	check "fetch opens a TCP connection to the mirror" quiet in_ns "$NS_FETCH" nc -z -w2 $MIRROR_IP 4998
	check "fetch cannot reach the seed's private address 10.1.0.2" fails in_ns "$NS_FETCH" nc -z -w2 10.1.0.2 4999
	in_ns "$NS_FETCH" nc -v -z -w2 7.7.7.11 4999 >"$WORK/nc.out" 2>&1
	local rc=$?
	check "fetch cannot connect to the seed's router (7.7.7.11)" test $rc -ne 0
	check "the router drops unsolicited inbound (no reset: timeout, not 'refused')" fails grep -qi refused "$WORK/nc.out"
	check "fetch cannot ping the seed's router" fails in_ns "$NS_FETCH" ping -c1 -W1 7.7.7.11
}

# ---------------------------------------------------------------- daemons

# start_daemon NS NAME [ARGS...]: runs `shoal --json daemon ARGS` in
# namespace NS on home $WORK/NAME and waits (at most $DEADLINE s) for its
# ready line. Sets DAEMON_OUT to its stdout file. Returns 1, with the
# daemon's last log lines, when it exits or does not get ready.
start_daemon() {
	local ns=$1 name=$2; shift 2
	DAEMON_OUT="$WORK/$name.out"
	in_ns "$ns" "$SHOAL" --home "$WORK/$name" --json daemon "$@" >"$DAEMON_OUT" 2>"$WORK/$name.log" &
	local pid=$!
	PIDS+=($pid)
	local end=$((SECONDS + DEADLINE))
	while [ $SECONDS -lt $end ]; do
		if jq -e -s '.[0].peer_id' "$DAEMON_OUT" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "     daemon $name exited: $(tail -3 "$WORK/$name.log" | tr '\n' ' ')"
			return 1
		fi
		sleep 0.2
	done
	echo "     daemon $name not ready after ${DEADLINE}s: $(tail -3 "$WORK/$name.log" | tr '\n' ' ')"
	return 1
}

# shoal_in NS NAME ARGS...: a shoal command in NS on home $WORK/NAME.
shoal_in() { local ns=$1 name=$2; shift 2; in_ns "$ns" "$SHOAL" --home "$WORK/$name" "$@"; }

# status_json NS NAME: `shoal status --json` of a daemon, or nothing (and
# the error in $WORK/NAME.status.err) when the command fails.
status_json() {
	shoal_in "$1" "$2" status --json 2>"$WORK/$2.status.err" || return 1
}

# show_status NS NAME: one line of a daemon's `status --json` (where it
# stands: reachability, addresses, DHT, peers, relay service).
show_status() {
	local st
	if st=$(status_json "$1" "$2"); then
		echo "     status $2: $(jq -c '{reachability, observed_addrs, relay_addrs, dht: {lan: "\(.dht.lan.mode)/\(.dht.lan.peers)", wan: "\(.dht.wan.mode)/\(.dht.wan.peers)"}, peers, relay}' <<<"$st" 2>/dev/null)"
	else
		echo "     status $2: unavailable ($(head -1 "$WORK/$2.status.err"))"
	fi
}

# bootstrapped NS NAME: the daemon has reached a bootstrap peer.
bootstrapped() { status_json "$1" "$2" | jq -e '(.bootstrap.reached // 0) > 0' >/dev/null; }

# relay_active NS NAME: the daemon's relay service serves.
relay_active() { status_json "$1" "$2" | jq -e '.relay.active == true' >/dev/null; }

# has_circuit_addr NS NAME: the node advertises a /p2p-circuit address (it
# holds a relay reservation).
has_circuit_addr() {
	local out
	out=$({ status_json "$1" "$2"; shoal_in "$1" "$2" id --json; } 2>/dev/null)
	grep -q p2p-circuit <<<"$out"
}

# report_sources GET_OUT: prints, from the result line of `get --json`,
# the bytes over direct and over relayed connections.
report_sources() {
	local res=$1
	DIRECT_BYTES=$(jq '[.sources[]? | select(.relayed != true) | .bytes] | add // 0' <<<"$res")
	RELAYED_BYTES=$(jq '[.sources[]? | select(.relayed == true) | .bytes] | add // 0' <<<"$res")
	jq -r '.sources[]? | "     source \(.peer): \(.bytes) bytes, \(.chunks) chunks, relayed=\(.relayed // "n/a")"' <<<"$res"
}

# ---------------------------------------------------------------- case 1

case_two_nats() {
	echo "# case 1: seeder and fetcher behind two NATs, mirror on the internet"
	"$WORK/bin/genmodel" "$WORK/model" $MODEL_MIB 1 || die "genmodel failed"

	# The mirror: public address, bootstrap peer, relay service.
	local relay_service=1 relay_up=0
	if start_daemon "$NS_INET" mirror --relay-service --dht-mode server --reachability public; then
		ok "mirror daemon starts with --relay-service"
	else
		bad "mirror daemon starts with --relay-service"
		# Go on without a relay so the rest of the setup is still exercised.
		relay_service=0
		start_daemon "$NS_INET" mirror2 --dht-mode server || die "mirror daemon does not start even without --relay-service"
		info "mirror runs without --relay-service (no relay: hole punching cannot start)"
	fi
	local mid maddr
	mid=$(jq -r -s '.[0].peer_id' "$DAEMON_OUT")
	maddr=$(jq -r -s '.[0].addrs[]' "$DAEMON_OUT" | grep -m1 "^/ip4/$MIRROR_IP/tcp/")
	[ -n "$maddr" ] || die "mirror lists no /ip4/$MIRROR_IP/tcp address: $(tr -d '\n' <"$DAEMON_OUT")"
	case $maddr in */p2p/*) ;; *) maddr="$maddr/p2p/$mid" ;; esac
	MIRROR=$maddr
	MIRROR_HOME=mirror
	[ $relay_service -eq 1 ] || MIRROR_HOME=mirror2
	echo "     mirror: $MIRROR"

	# The relay serves only once the mirror counts itself public.
	if [ $relay_service -eq 1 ]; then
		if wait_for 20 relay_active "$NS_INET" mirror; then
			ok "mirror's relay service is active (status: relay.active)"
			relay_up=1
		else
			bad "mirror's relay service is active within 20 s (status: relay.active)"
		fi
	fi

	# The seeder: a default daemon that knows only the mirror.
	start_daemon "$NS_SEED" seed --bootstrap "$MIRROR" || die "seed daemon does not start"
	ok "seed daemon starts behind NAT"
	local cid
	cid=$(shoal_in "$NS_SEED" seed add "$WORK/model" 2>"$WORK/add.err" | tail -1)
	grep -q '^bafy' <<<"$cid" || die "shoal add on the seeder printed no CID: $(head -c 300 "$WORK/add.err")"
	ok "seed adds the ${MODEL_MIB} MiB model: $cid"
	CID=$cid

	# A NATed seeder is reachable only through the relay until a punch.
	# (A short wait only when the relay is known not to serve.)
	local rwait=5
	[ $relay_up -eq 1 ] && rwait=30
	if wait_for $rwait has_circuit_addr "$NS_SEED" seed; then
		ok "seed holds a relay reservation (/p2p-circuit address)"
	else
		bad "seed holds a relay reservation within $rwait s (no /p2p-circuit address in status/id)"
	fi

	show_status "$NS_SEED" seed

	# The fetcher knows only the mirror too.
	local get_out="$WORK/get1.out" rc
	if [ "${NAT_FETCH_DAEMON:-1}" = 1 ]; then
		# Fetch through a default daemon on the fetcher (it has time to
		# learn its public address from the mirror before the fetch).
		start_daemon "$NS_FETCH" fetch --bootstrap "$MIRROR" || die "fetch daemon does not start"
		ok "fetch daemon starts behind NAT"
		# A daemon that has been up a moment: it has reached the mirror and
		# learned its public address from it (the hole-punch service speaks
		# /libp2p/dcutr only from then on, polled every 250 ms at first).
		if wait_for 20 bootstrapped "$NS_FETCH" fetch; then sleep 1; else
			info "fetch daemon did not report reaching the mirror within 20 s"
		fi
		in_ns "$NS_FETCH" timeout 75 "$SHOAL" --home "$WORK/fetch" --json get "$CID" -o "$WORK/out1" >"$get_out" 2>"$WORK/get1.err"
		rc=$?
	else
		# Default: no daemon on the fetcher; `shoal get` runs its own node
		# for the length of the command. It needs no relay reservation of
		# its own: it dials the seeder through the relay, and the seeder,
		# which receives the relayed connection, starts the hole punch
		# (DCUtR). The fetcher must by then speak /libp2p/dcutr, which
		# go-libp2p turns on only once the host knows a public address (its
		# address as the mirror observed it, checked every 250 ms at first);
		# a get that dials the seeder sooner makes the one punch attempt fail
		# ("protocols not supported: [/libp2p/dcutr]") and leaves the data
		# on the relay. That is why the default (NAT_FETCH_DAEMON=1) runs
		# the fetch through a daemon on the fetcher.
		in_ns "$NS_FETCH" timeout 75 "$SHOAL" --home "$WORK/fetch" --json get "$CID" -o "$WORK/out1" \
			--bootstrap "$MIRROR" >"$get_out" 2>"$WORK/get1.err"
		rc=$?
	fi
	check_fetch "get across two NATs" "fetched tree" $rc "$WORK/get1.err" "$WORK/out1"

	# How did the bytes travel?
	local res
	res=$(grep '"event":"result"' "$get_out" | tail -1 | jq -c '.result' 2>/dev/null)
	DIRECT_BYTES=0 RELAYED_BYTES=0
	if [ -n "$res" ]; then
		report_sources "$res"
		if jq -e '[.sources[]? | has("relayed")] | length > 0 and all' <<<"$res" >/dev/null; then
			ok "every source in the get result has a \"relayed\" flag"
			if [ "$DIRECT_BYTES" -gt 0 ] && [ "$RELAYED_BYTES" -eq 0 ]; then
				echo "PATH: direct (hole-punched) connection, $DIRECT_BYTES bytes direct"
			elif [ "$DIRECT_BYTES" -gt 0 ]; then
				echo "PATH: mixed, $DIRECT_BYTES bytes direct (hole-punched), $RELAYED_BYTES bytes relayed"
			else
				echo "PATH: relayed, $RELAYED_BYTES bytes through the relay"
			fi
		else
			bad "every source in the get result has a \"relayed\" flag"
			echo "PATH: unknown (no \"relayed\" flag in the get result)"
		fi
	else
		echo "PATH: unknown (no result from get)"
	fi
	if [ "${NAT_FETCH_DAEMON:-1}" = 1 ]; then
		local fs
		if fs=$(status_json "$NS_FETCH" fetch); then
			echo "FETCHER CONNECTIONS: $(jq -r '"\(.peers.direct) direct, \(.peers.relayed) relayed only, \(.peers.lan) lan (reachability \(.reachability))"' <<<"$fs")"
		else
			echo "FETCHER CONNECTIONS: unknown ($(head -1 "$WORK/fetch.status.err"))"
		fi
	fi
	show_status "$NS_SEED" seed
	show_status "$NS_INET" "$MIRROR_HOME"

	# How much did the relay carry?
	local ms rb
	if ms=$(status_json "$NS_INET" "$MIRROR_HOME"); then
		rb=$(jq -r '.relay.bytes // empty' <<<"$ms" 2>/dev/null)
		if [ -n "$rb" ]; then
			echo "RELAY BYTES: $rb (bytes the mirror's relay carried)"
			ok "mirror status --json reports relay.bytes"
			# Consistency: a direct fetch leaves only control traffic on the
			# relay; a relayed one puts at least the relayed bytes on it.
			if [ "$RELAYED_BYTES" -gt 0 ]; then
				check "relay carried at least the relayed source bytes ($rb >= $RELAYED_BYTES)" test "$rb" -ge "$RELAYED_BYTES"
			elif [ "$DIRECT_BYTES" -gt 0 ]; then
				check "relay carried less than the model after a direct fetch ($rb < $DIRECT_BYTES)" test "$rb" -lt "$DIRECT_BYTES"
			fi
		else
			echo "RELAY BYTES: unknown (mirror status has no relay.bytes)"
			bad "mirror status --json reports relay.bytes"
		fi
	else
		echo "RELAY BYTES: unknown (mirror status failed: $(head -1 "$WORK/$MIRROR_HOME.status.err"))"
		bad "mirror status --json works ($(head -1 "$WORK/$MIRROR_HOME.status.err"))"
	fi
}

# ---------------------------------------------------------------- case 2

# lan_peer_seen NS NAME: the daemon's status shows a LAN peer.
lan_peer_seen() {
	status_json "$1" "$2" | jq -e '((.peers.lan // .connected.lan // .lan // []) | if type == "array" then length else . end) > 0' >/dev/null
}

case_mdns() {
	echo "# case 2: two hosts on one home LAN, no bootstrap (mDNS)"
	start_daemon "$NS_LANA" lanA || die "lanA daemon does not start"
	start_daemon "$NS_LANB" lanB || die "lanB daemon does not start"
	ok "lanA and lanB daemons start with no bootstrap"
	local cid
	cid=$(shoal_in "$NS_LANA" lanA add "$WORK/model" 2>"$WORK/addA.err" | tail -1)
	grep -q '^bafy' <<<"$cid" || die "shoal add on lanA printed no CID: $(head -c 300 "$WORK/addA.err")"
	check "lanA adds the model under the same CID" test "$cid" = "$CID"
	# Give mDNS its time (bounded): until lanB's status shows a LAN peer.
	if wait_for 20 lan_peer_seen "$NS_LANB" lanB; then
		ok "lanB's status shows a LAN peer (mDNS)"
	else
		bad "lanB's status shows a LAN peer within 20 s ($(head -1 "$WORK/lanB.status.err" 2>/dev/null))"
	fi
	in_ns "$NS_LANB" timeout 60 "$SHOAL" --home "$WORK/lanB" --json get "$cid" -o "$WORK/out2" >"$WORK/get2.out" 2>"$WORK/get2.err"
	check_fetch "get on the LAN through lanB's daemon" "LAN fetch" $? "$WORK/get2.err" "$WORK/out2"
	local res
	res=$(grep '"event":"result"' "$WORK/get2.out" | tail -1 | jq -c '.result' 2>/dev/null)
	[ -n "$res" ] && report_sources "$res"
	show_status "$NS_LANB" lanB
}

# case_sybil: 40 peer IDs from one public address crowd the mirror
# (threat 9). The resource manager keeps at most conns_per_ip (8) of their
# connections, the WAN routing table at most 3 of them (one IP group),
# and the mirror goes on answering.
case_sybil() {
	echo "# case 3: 40 peer IDs from one IP address (threat 9)"
	new_ns "$NS_SYB"
	ip -n "$NS_INET" link add syb type veth peer name eth0 netns "$NS_SYB"
	ip -n "$NS_INET" link set syb master inet up
	ip -n "$NS_SYB" addr add "$SYBIL_IP/24" dev eth0
	ip -n "$NS_SYB" link set eth0 up
	local wan_before out
	wan_before=$(status_json "$NS_INET" "$MIRROR_HOME" | jq -r '.dht.wan.peers')
	out=$(in_ns "$NS_SYB" timeout 120 "$WORK/bin/sybil" --target "$MIRROR" --ip "$SYBIL_IP" --n 40 --wait 10s 2>"$WORK/sybil.err")
	info "sybil: $out (WAN table before: $wan_before)"
	check "the sybil crowd ran" test -n "$out"
	local kept wan
	kept=$(jq -r '.connected_after' <<<"$out")
	check "the mirror keeps at most 8 connections from one IP ($kept of 40)" test "${kept:-99}" -le 8
	wan=$(status_json "$NS_INET" "$MIRROR_HOME" | jq -r '.dht.wan.peers')
	check "the mirror's WAN table holds at most 3 of them ($wan, was $wan_before)" test "$((wan - wan_before))" -le 3
	check "the mirror still answers (status)" quiet status_json "$NS_INET" "$MIRROR_HOME"
}

# ---------------------------------------------------------------- main

need_root
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-nat.XXXXXX")
trap cleanup EXIT
trap 'bad "interrupted"; finish' INT TERM
install_tools
build
setup_topology
check_connectivity
case_two_nats
case_mdns
case_sybil
finish
