# Kubo (IPFS) as a second baseline for fetch_1to1.sh --kubo. Sourced.
#
# kubo_build (before the benchmark enters its network namespace, where the
# module proxy is out of reach): builds Kubo $KUBO_VERSION from the Go
# module proxy as one would by hand, into a cache folder outside the
# repository, reused when there. Its go.mod replaces go-libp2p v0.49.0 with
# a fork the proxy does not serve (and so `go install pkg@version`
# refuses): the module is downloaded, the replace dropped, and it is built
# against go-libp2p v0.49.0 itself, the release the fork is based on, with
# the quic-go and webtransport-go versions that release wants (Kubo raised
# them for the fork).
KUBO_VERSION=v0.43.1
KUBO_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/shoal-bench/kubo-$KUBO_VERSION
KUBO=$KUBO_DIR/bin/ipfs

kubo_build() {
	[ -x "$KUBO" ] && return
	echo "building Kubo $KUBO_VERSION into $KUBO_DIR (once; a few minutes)" >&2
	local src
	src=$(cd /tmp && GOFLAGS= go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "cannot download Kubo $KUBO_VERSION" >&2; return 1; }
	rm -rf "$KUBO_DIR/src" && mkdir -p "$KUBO_DIR/bin" && cp -r "$src" "$KUBO_DIR/src" && chmod -R u+w "$KUBO_DIR/src"
	(cd "$KUBO_DIR/src" && go mod edit -dropreplace github.com/libp2p/go-libp2p \
		-require=github.com/quic-go/quic-go@v0.60.0 -require=github.com/quic-go/webtransport-go@v0.11.1 &&
		GOFLAGS=-mod=mod go build -o "$KUBO" ./cmd/ipfs)
}

# kubo_node NAME: an IPFS repo at $WORK/NAME on 127.0.0.1 only (no
# bootstrap, no mDNS, no routing lookups, random ports), its daemon
# started; sets KADDR to its swarm multiaddr with /p2p/ID.
kubo_node() {
	local r="$WORK/$1"
	IPFS_PATH=$r "$KUBO" init --profile=test >/dev/null
	IPFS_PATH=$r "$KUBO" config --json Routing.Type '"none"'
	IPFS_PATH=$r "$KUBO" config --json Discovery.MDNS.Enabled false
	IPFS_PATH=$r "$KUBO" config --json Swarm.ConnMgr '{"Type":"none"}' 2>/dev/null || true
	IPFS_PATH=$r "$KUBO" daemon --offline=false >"$r.out" 2>"$r.log" &
	PIDS+=($!)
	for _ in $(seq 300); do grep -q 'Daemon is ready' "$r.out" 2>/dev/null && break; sleep 0.1; done
	grep -q 'Daemon is ready' "$r.out" || { echo "kubo $1 did not start"; cat "$r.log"; exit 1; }
	local id
	id=$(IPFS_PATH=$r "$KUBO" id -f '<id>')
	KADDR=$(IPFS_PATH=$r "$KUBO" id -f '<addrs>' | grep '/ip4/127.0.0.1/tcp/' | grep -v '/ws' | head -1)
	case $KADDR in */p2p/*) ;; *) KADDR="$KADDR/p2p/$id" ;; esac
}
