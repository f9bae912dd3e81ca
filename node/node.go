package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relay "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-p2p/shoal/mirror"
	"golang.org/x/time/rate"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/protocol"
)

// Protocols lists the libp2p protocol IDs Shoal speaks itself: the
// exchange and its two DHTs.
func Protocols() []string {
	return []string{protocol.ID, DHTPrefix + string(dual.LanExtension) + "/kad/1.0.0", DHTPrefix + "/kad/1.0.0"}
}

// DHTPrefix is the protocol prefix of Shoal's own DHT.
const DHTPrefix = "/shoal"

// Limits on the exchange protocol, enforced by the resource manager: a
// peer cannot open streams without end. A fetcher uses one stream per
// peer and fetch (and reopens it after the server closed it idle), so 8
// inbound streams leave room for several fetches at once; holding every
// slot of the node takes 128 peer IDs, each sending a request on each
// stream at least every protocol.DefaultIdleTimeout.
const (
	maxInboundPerPeer  = 8
	maxOutboundPerPeer = 16
	maxStreamsTotal    = 1024
	// strangerStreams is the share of maxStreamsTotal open to peers this
	// node is not fetching from; the rest is kept for the peers of its own
	// fetches, which in a swarm fetch from it too.
	strangerStreams = maxStreamsTotal * 3 / 4
)

// MDNSService is the multicast DNS service name under which Shoal nodes
// find each other on a LAN (not libp2p's default, so only Shoal peers
// answer).
const MDNSService = "_shoal._udp"

// Node is a running Shoal peer.
type Node struct {
	Host  host.Host
	DHT   *dual.DHT // LAN and WAN halves, both under DHTPrefix
	Index *content.Index
	cfg   home.Config
	log   *slog.Logger

	// Home, when set, gives petnames to signers in results.
	Home home.Home

	// manifests are held roots' manifests decoded for HTTP reads (a
	// manifest never changes: a CID names it).
	manMu     sync.Mutex
	manifests map[cid.Cid]*content.Manifest

	fetcher  *fetch.Engine // fetches, and serves what they have
	keyCheck sync.Mutex    // one file-key check at a time (checkFileKeys)
	up, down *rate.Limiter // nil: unlimited
	strikes  strikes
	ann      *announcer // nil: this node does not provide (a short-lived fetcher)
	mdns     mdns.Service
	relay    *relayMeter // nil: no relay service
	keeper   *mirror.Keeper
	follower *mirror.Follower // nil: not a daemon
	started  time.Time

	served, fetched atomic.Int64 // exchange-protocol bytes sent and received
	badChunks       atomic.Int64 // chunks refused as not matching their CID
	chunksServed    atomic.Int64 // blocks served to other peers
	provides        atomic.Int64 // DHT keys announced (provide calls)
	rotten          atomic.Int64 // held chunks whose bytes on disk no longer match
	rotSeen         sync.Map     // file path → true: logged once
	strangers       atomic.Int64 // inbound exchange streams of peers not our sources
	srcMu           sync.Mutex
	srcPeers        map[peer.ID]int // peers this node has a source open to
	reach           atomic.Int32    // network.Reachability from AutoNAT
	boot            bootState

	closeOnce sync.Once
	cancel    context.CancelFunc
	ctx       context.Context
	wg        sync.WaitGroup
}

// New starts a node: a libp2p host on cfg.Listen with the NAT traversal
// cfg asks for, and a LAN and a WAN DHT, serving the blocks of idx. It does
// not contact anyone until Bootstrap (mDNS, when on, starts at once).
func New(cfg home.Config, key crypto.PrivKey, idx *content.Index, log *slog.Logger) (*Node, error) {
	return newNode(cfg, key, idx, log, nil)
}

// newNode is New with the DHTs' records kept in store (nil: in memory).
func newNode(cfg home.Config, key crypto.PrivKey, idx *content.Index, log *slog.Logger, store ds.Batching) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	limits.AddProtocolLimit(protocol.ID,
		rcmgr.BaseLimit{StreamsInbound: maxStreamsTotal, StreamsOutbound: maxStreamsTotal, Streams: 2 * maxStreamsTotal, Memory: 512 << 20},
		rcmgr.BaseLimitIncrease{})
	peerLimit := rcmgr.BaseLimit{StreamsInbound: maxInboundPerPeer, StreamsOutbound: maxOutboundPerPeer,
		Streams: maxInboundPerPeer + maxOutboundPerPeer, Memory: 64 << 20}
	limits.AddProtocolPeerLimit(protocol.ID, peerLimit, rcmgr.BaseLimitIncrease{})
	// The server reserves its buffers (about 1 MiB while a request is
	// served) under its service.
	limits.AddServiceLimit(protocol.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: maxStreamsTotal, StreamsOutbound: maxStreamsTotal, Streams: 2 * maxStreamsTotal, Memory: 512 << 20},
		rcmgr.BaseLimitIncrease{})
	limits.AddServicePeerLimit(protocol.ServiceName, peerLimit, rcmgr.BaseLimitIncrease{})
	scaled := limits.AutoScale()
	if cfg.MaxConns > 0 {
		c := scaled.ToPartialLimitConfig()
		c.System.Conns, c.System.ConnsInbound = rcmgr.LimitVal(cfg.MaxConns), rcmgr.LimitVal(cfg.MaxConns)
		scaled = c.Build(scaled)
	}
	// At most ConnsPerIP connections from one address (IPv4 /32, IPv6
	// /56): many peer IDs from one machine get no more (threat 9).
	perIP := cfg.ConnsPerIP
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(scaled), rcmgr.WithLimitPerSubnet(
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: perIP}},
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: perIP}, {PrefixLength: 48, ConnCount: 8 * perIP}}))
	if err != nil {
		return nil, err
	}
	if err := checkPortsFree(cfg.Listen); err != nil {
		rm.Close()
		return nil, err
	}
	boot, _ := home.ParseBootstrap(cfg.Bootstrap)
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity, // TLS first, then Noise
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.EnableRelay(), // dial and accept relayed connections
	}
	if cfg.AutoNAT {
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableAutoNATv2())
	}
	switch cfg.Reachability {
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if cfg.AutoRelay && len(boot) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(boot))
	}
	if cfg.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	var meter *relayMeter
	if cfg.RelayService {
		meter = &relayMeter{}
		ropts := []relay.Option{relay.WithMetricsTracer(meter)}
		if cfg.RelayData {
			ropts = append(ropts, relay.WithInfiniteLimits())
		}
		opts = append(opts, libp2p.EnableRelayService(ropts...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	kad, err := newDHT(h, cfg.DHTMode, boot, store)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	upRate, _ := home.ParseRate(cfg.MaxUpload)
	downRate, _ := home.ParseRate(cfg.MaxDownload)
	n := &Node{Host: h, DHT: kad, Index: idx, cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		up: newLimiter(upRate), down: newLimiter(downRate), relay: meter, started: time.Now(),
	}
	// A process's own fetch logs, until Open gives the home's key.
	logKey := make([]byte, 32)
	_, _ = rand.Read(logKey)
	n.fetcher = fetch.New(n, idx, fetch.Config{RequestTimeout: time.Duration(cfg.RequestTimeout),
		FindTimeout: time.Duration(cfg.FindTimeout), LogKey: logKey}, log)
	n.newKeeper()
	idx.OnRot = n.onRot
	srv := &protocol.Server{Store: n.fetcher, Log: log, Asked: n.fetcher.Asked, Blocks: &n.chunksServed}
	h.SetStreamHandler(protocol.ID, func(s network.Stream) {
		if !n.isSourcePeer(s.Conn().RemotePeer()) {
			if n.strangers.Add(1) > strangerStreams {
				n.strangers.Add(-1)
				n.log.Debug("exchange stream refused: strangers' share taken", "peer", s.Conn().RemotePeer())
				_ = s.Reset()
				return
			}
			defer n.strangers.Add(-1)
		}
		srv.Handle(limitStream(s, n.up, nil, &n.served, nil))
	})
	n.watchReachability()
	if cfg.MDNS {
		queue := make(chan mdnsFound, mdnsQueue)
		for range mdnsDials {
			n.wg.Go(func() { n.mdnsDialer(queue) })
		}
		n.mdns = mdns.NewMdnsService(h, MDNSService, mdnsNotifee{n: n, queue: queue})
		if err := n.mdns.Start(); err != nil {
			// No multicast interface is no reason not to run.
			log.Info("mDNS off", "err", err)
			n.mdns = nil
		}
	}
	return n, nil
}

// checkPortsFree refuses a fixed TCP listen port that another process
// holds: libp2p binds with SO_REUSEPORT, so two nodes on one machine would
// otherwise share port 4001 and a dial would reach either.
func checkPortsFree(listen []string) error {
	for _, s := range listen {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		port, err := m.ValueForProtocol(ma.P_TCP)
		if err != nil || port == "0" {
			continue
		}
		host, err := m.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if host, err = m.ValueForProtocol(ma.P_IP6); err != nil {
				continue
			}
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("listen %s: port %s is taken (another shoal daemon?); give this node another with --listen, e.g. /ip4/0.0.0.0/tcp/0: %w", s, port, err)
		}
		ln.Close()
	}
	return nil
}

// newDHT starts the LAN and WAN DHTs under Shoal's prefix. The LAN DHT
// keeps peers reached over private and loopback addresses and, unlike
// Kubo's, also hands out loopback addresses (so that nodes on one machine
// find each other); the WAN DHT keeps only publicly reachable peers.
//
// With store set, both keep their records and provider records there
// (under /lan and /wan), across restarts.
func newDHT(h host.Host, mode string, boot []peer.AddrInfo, store ds.Batching) (*dual.DHT, error) {
	common := []dht.Option{dht.ProtocolPrefix(DHTPrefix), dht.BootstrapPeers(boot...),
		dht.NamespacedValidator(content.RecordNamespace, content.RecordValidator{})}
	// dual.New sets the LAN extension before our prefix replaces it:
	// set it again, so the LAN DHT speaks /shoal/lan/kad/1.0.0.
	lan := []dht.Option{dht.ProtocolExtension(dual.LanExtension), dht.AddressFilter(nil)}
	// dual gives the WAN table its peer-diversity filter: at most 2 peers
	// of one IP group (a /16, or an ASN for IPv6) a bucket and 3 in all
	// (threat 9; scripts/nat-test.sh case 3 checks it). The LAN table has
	// none: every LAN peer shares a group.
	var wan []dht.Option
	switch mode {
	case "server":
		lan = append(lan, dht.Mode(dht.ModeServer))
		wan = append(wan, dht.Mode(dht.ModeServer))
	case "client":
		lan = append(lan, dht.Mode(dht.ModeClient))
		wan = append(wan, dht.Mode(dht.ModeClient))
	default: // auto: the WAN DHT follows AutoNAT, the LAN DHT serves
		lan = append(lan, dht.Mode(dht.ModeServer))
		wan = append(wan, dht.Mode(dht.ModeAuto))
	}
	if store != nil {
		lan = append(lan, dht.Datastore(namespace.Wrap(store, ds.NewKey("/lan"))))
		wan = append(wan, dht.Datastore(namespace.Wrap(store, ds.NewKey("/wan"))))
	}
	return dual.New(h, dual.DHTOption(common...), dual.LanDHTOption(lan...), dual.WanDHTOption(wan...))
}

// mDNS answers are dialled by mdnsDials workers from a queue of at most
// mdnsQueue peers: a flood of forged answers costs a bounded queue, not a
// goroutine each. An answer is queued, never dropped while there is room:
// the mDNS browser reports each peer once until its entry expires, so an
// answer skipped because dials were busy (a LAN with many nodes, a loaded
// machine) would leave that peer unmet for minutes.
const (
	mdnsDials = 8
	mdnsQueue = 256
)

// mdnsYield is how long the node with the greater peer ID waits for the
// other to dial it before it dials itself. Both find each other at once,
// and go-libp2p dials TCP from its listen port: two dials at the same
// moment become one TCP connection opened from both ends (simultaneous
// open), on which both sides send a TLS ClientHello and both fail.
const mdnsYield = 2 * time.Second

// mdnsFound is a peer that mDNS found; yielded once it has waited.
type mdnsFound struct {
	ai      peer.AddrInfo
	yielded bool
}

// mdnsNotifee queues the Shoal peers that mDNS finds for the dialers.
type mdnsNotifee struct {
	n     *Node
	queue chan mdnsFound
}

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.Host.ID() {
		return
	}
	m.n.queueMDNS(m.queue, mdnsFound{ai: ai})
}

func (n *Node) queueMDNS(queue chan mdnsFound, f mdnsFound) {
	select {
	case queue <- f:
	case <-n.ctx.Done():
	default:
		n.log.Debug("mDNS peer skipped: dial queue full", "peer", f.ai.ID)
	}
}

// mdnsDialer connects to the peers queued by mDNS until the node closes.
func (n *Node) mdnsDialer(queue chan mdnsFound) {
	for {
		var f mdnsFound
		select {
		case f = <-queue:
		case <-n.ctx.Done():
			return
		}
		if n.Host.Network().Connectedness(f.ai.ID) == network.Connected {
			continue
		}
		if !f.yielded && n.Host.ID() > f.ai.ID {
			f.yielded = true
			time.AfterFunc(mdnsYield, func() { n.queueMDNS(queue, f) })
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.Host.Connect(ctx, f.ai)
		cancel()
		if err != nil {
			n.log.Debug("mDNS peer unreachable", "peer", f.ai.ID, "err", err)
			continue
		}
		// A peer that answered under our service name but speaks no
		// Shoal is never asked for anything (fetches ask only peers that
		// speak the exchange protocol); the connection manager trims it.
		// It is not closed here: identify may still be running on a
		// connection the peer opened to us at the same moment.
		n.log.Debug("mDNS peer", "peer", f.ai.ID)
	}
}

// Close stops the node: mDNS, announcing, DHT, host. The index is the
// caller's to close.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.cancel()
		if n.mdns != nil {
			n.mdns.Close()
		}
		n.Host.RemoveStreamHandler(protocol.ID)
		n.wg.Wait()
		err = errors.Join(n.DHT.Close(), n.Host.Close())
	})
	return err
}

// Addrs returns the node's full multiaddrs (with /p2p/ID).
func (n *Node) Addrs() []ma.Multiaddr {
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()})
	return out
}

// bootState is how far bootstrapping has come, for status.
type bootState struct {
	mu         sync.Mutex
	state      string // "", "connecting", "done", "failed"
	reached    int
	tried      int
	err        string
	remembered int
}

func (b *bootState) set(f func(*bootState)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

// Bootstrap connects to the configured bootstrap peers and to the peers
// this home remembers, all at once, and starts filling the routing tables.
// It fails only when peers were configured and none could be reached; with
// none configured it returns at once. It waits at most a few seconds for a
// routing table to hold a peer.
func (n *Node) Bootstrap(ctx context.Context) error {
	boot, _ := home.ParseBootstrap(n.cfg.Bootstrap)
	var remembered []peer.AddrInfo
	if n.Home.Dir != "" {
		remembered = n.Home.RememberedPeers()
	}
	n.boot.set(func(b *bootState) {
		b.state, b.tried, b.remembered = "connecting", len(boot)+len(remembered), len(remembered)
	})
	all := append(append([]peer.AddrInfo{}, boot...), remembered...)
	if len(all) == 0 {
		n.boot.set(func(b *bootState) { b.state = "done" })
		return nil
	}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, ai := range all {
		if ai.ID == n.Host.ID() {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := n.Host.Connect(cctx, ai)
			if errors.Is(err, swarm.ErrDialBackoff) {
				// The DHT dialled it a moment ago and failed: dial once
				// more to learn why, rather than report "backoff".
				if sw, ok := n.Host.Network().(*swarm.Swarm); ok {
					sw.Backoff().Clear(ai.ID)
				}
				err = n.Host.Connect(cctx, ai)
			}
			if mm := (sec.ErrPeerIDMismatch{}); errors.As(err, &mm) {
				err = fmt.Errorf("the peer at %v is %s, not the %s its address names: check the /p2p/ part of the bootstrap address", ai.Addrs, mm.Actual, mm.Expected)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", ai.ID, err)
			}
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	err := errors.Join(errs...)
	n.boot.set(func(b *bootState) {
		b.reached = ok
		b.state = "done"
		if ok == 0 {
			b.state = "failed"
		}
		if err != nil {
			b.err = err.Error()
		}
	})
	if ok == 0 {
		if len(boot) == 0 {
			return nil // only remembered peers, all gone: not an error
		}
		return fmt.Errorf("no bootstrap peer reachable: %w", err)
	}
	if err := n.DHT.Bootstrap(ctx); err != nil {
		return err
	}
	// The routing tables fill asynchronously after identify; wait a
	// bounded time for one peer so that a first query has somewhere to go.
	deadline := time.Now().Add(5 * time.Second)
	for n.tableSize() == 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// putValue puts a record on both DHTs: on the LAN DHT always, on the WAN
// DHT when it has peers. It fails only when neither took it.
func (n *Node) putValue(ctx context.Context, key string, val []byte) error {
	lerr := n.DHT.LAN.PutValue(ctx, key, val)
	if n.DHT.WANActive() {
		if werr := n.DHT.WAN.PutValue(ctx, key, val); werr != nil && lerr != nil {
			return errors.Join(lerr, werr)
		}
		return nil
	}
	return lerr
}

// tableSize is the number of peers in the LAN and WAN routing tables.
func (n *Node) tableSize() int {
	return n.DHT.LAN.RoutingTable().Size() + n.DHT.WAN.RoutingTable().Size()
}

// provide announces one key on both DHTs: on the LAN DHT always, on the
// WAN DHT when it has peers. It fails only when neither took it.
func (n *Node) provide(ctx context.Context, k cid.Cid) error {
	n.provides.Add(1)
	lerr := n.DHT.LAN.Provide(ctx, k, true)
	if n.DHT.WANActive() {
		if werr := n.DHT.WAN.Provide(ctx, k, true); werr != nil && lerr != nil {
			return errors.Join(lerr, werr)
		}
		return nil
	}
	return lerr
}

// Keys returns the DHT keys announced for a held root: the root itself and
// the sha256 of each file of at least content.FileKeyMin bytes whose bytes
// were hashed to it (a fetched file's sha256 is the manifest's word until
// checkFileKeys hashes it).
func (n *Node) Keys(root cid.Cid) ([]cid.Cid, error) {
	info, err := n.Index.Root(root)
	if err != nil && !errors.Is(err, content.ErrNotFound) {
		return nil, err
	}
	if err == nil && !info.Servable() {
		return nil, nil // every copy is damaged: nothing to claim
	}
	keys := []cid.Cid{root}
	seen := map[cid.Cid]bool{root: true}
	for _, p := range info.Places {
		if p.Damaged {
			continue
		}
		files, _ := n.Index.PlaceFiles(root, p.Dir)
		for _, f := range files {
			if len(f.SHA256) != 32 || f.Size < content.FileKeyMin || f.Unchecked {
				continue
			}
			k := content.FileKey([32]byte(f.SHA256))
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// Add imports a file or folder in place, records it in the index and
// announces its root. The file keys, and the root again if this first
// announce failed, are left to the announcer, which retries until they
// are out. A node without an announcer (a short-lived fetcher) announces
// nothing. opt says how to import (progress, links out of the folder).
func (n *Node) Add(ctx context.Context, path string, opt content.ImportOptions) (*Added, error) {
	res, err := AddOffline(ctx, n.Index, path, opt)
	if err != nil {
		return nil, err
	}
	if n.ann == nil {
		return res, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = n.provide(pctx, res.M.Root)
	cancel()
	if err != nil {
		n.log.Info("added; announce goes on in the background", "root", res.Root, "err", err)
	} else {
		res.Announced = true
	}
	n.ann.add(res.M.Root)
	return res, nil
}

// addSourcePeer notes a source open to p, until the returned func runs.
func (n *Node) addSourcePeer(p peer.ID) (done func()) {
	n.srcMu.Lock()
	if n.srcPeers == nil {
		n.srcPeers = map[peer.ID]int{}
	}
	n.srcPeers[p]++
	n.srcMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.srcMu.Lock()
			if n.srcPeers[p]--; n.srcPeers[p] <= 0 {
				delete(n.srcPeers, p)
			}
			n.srcMu.Unlock()
		})
	}
}

// isSourcePeer reports whether this node is fetching from p.
func (n *Node) isSourcePeer(p peer.ID) bool {
	n.srcMu.Lock()
	defer n.srcMu.Unlock()
	return n.srcPeers[p] > 0
}

// onRot counts a held chunk whose bytes on disk no longer hash to it (bit
// rot, or a change that kept size and mtime): it is not served. The file
// is named in the log once.
func (n *Node) onRot(root cid.Cid, f content.FileInfo, err error) {
	n.rotten.Add(1)
	if _, seen := n.rotSeen.LoadOrStore(f.Path, true); !seen {
		n.log.Warn("a held file no longer matches its model; its bad chunks are not served (shoal verify says more)",
			"root", root, "file", f.Path, "err", err)
	}
}
