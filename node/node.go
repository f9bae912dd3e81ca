package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// DHTPrefix is the protocol prefix of Shoal's own DHT.
const DHTPrefix = "/shoal"

// Per-peer limits on the exchange protocol, enforced by the resource
// manager: a peer cannot open streams without end.
const (
	maxStreamsPerPeer = 16
	maxStreamsTotal   = 1024
)

// Node is a running Shoal peer.
type Node struct {
	Host  host.Host
	DHT   *dht.IpfsDHT
	Index *content.Index
	cfg   Config
	log   *slog.Logger

	// Home, when set, gives petnames to signers in results.
	Home Home

	store    *store
	up, down *rate.Limiter // nil: unlimited
	strikes  strikes

	closeOnce sync.Once
	cancel    context.CancelFunc
	ctx       context.Context
	wg        sync.WaitGroup
}

// New starts a node: a libp2p host on cfg.Listen and a DHT in cfg.DHTMode,
// serving the blocks of idx. It does not contact anyone until Bootstrap.
func New(cfg Config, key crypto.PrivKey, idx *content.Index, log *slog.Logger) (*Node, error) {
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
	limits.AddProtocolPeerLimit(protocol.ID,
		rcmgr.BaseLimit{StreamsInbound: maxStreamsPerPeer, StreamsOutbound: maxStreamsPerPeer, Streams: 2 * maxStreamsPerPeer, Memory: 64 << 20},
		rcmgr.BaseLimitIncrease{})
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity, // TLS first, then Noise
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	boot, _ := ParseBootstrap(cfg.Bootstrap)
	mode := dht.ModeAuto
	switch cfg.DHTMode {
	case "server":
		mode = dht.ModeServer
	case "client":
		mode = dht.ModeClient
	}
	kad, err := dht.New(h, dht.Mode(mode), dht.ProtocolPrefix(DHTPrefix), dht.BootstrapPeers(boot...),
		dht.NamespacedValidator(content.RecordNamespace, content.RecordValidator{}))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	upRate, _ := ParseRate(cfg.MaxUpload)
	downRate, _ := ParseRate(cfg.MaxDownload)
	n := &Node{Host: h, DHT: kad, Index: idx, cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		store: &store{idx: idx}, up: newLimiter(upRate), down: newLimiter(downRate)}
	srv := &protocol.Server{Store: n.store, Log: log, Asked: n.store.asked}
	h.SetStreamHandler(protocol.ID, func(s network.Stream) { srv.Handle(limitStream(s, n.up, nil)) })
	return n, nil
}

// Close stops the node: DHT, host. The index is the caller's to close.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.cancel()
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

// Bootstrap connects to the configured bootstrap peers and fills the
// routing table. It fails only when peers were configured and none could be
// reached; with none configured it returns at once.
func (n *Node) Bootstrap(ctx context.Context) error {
	boot, _ := ParseBootstrap(n.cfg.Bootstrap)
	if len(boot) == 0 {
		return nil
	}
	var ok int
	var errs []error
	for _, ai := range boot {
		if ai.ID == n.Host.ID() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Host.Connect(cctx, ai)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ai.ID, err))
			continue
		}
		ok++
	}
	if ok == 0 && len(errs) > 0 {
		return fmt.Errorf("no bootstrap peer reachable: %w", errors.Join(errs...))
	}
	if err := n.DHT.Bootstrap(ctx); err != nil {
		return err
	}
	// The routing table fills asynchronously after identify; wait a bounded
	// time for it so that the first announce has somewhere to go.
	deadline := time.Now().Add(10 * time.Second)
	for n.DHT.RoutingTable().Size() == 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case err := <-n.DHT.ForceRefresh():
		if err != nil {
			n.log.Debug("dht refresh", "err", err)
		}
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Keys returns the DHT keys announced for a held root: the root itself and
// each file's sha256.
func (n *Node) Keys(root cid.Cid) ([]cid.Cid, error) {
	files, err := n.Index.Files(root)
	if err != nil && !errors.Is(err, content.ErrNotFound) {
		return nil, err
	}
	keys := []cid.Cid{root}
	seen := map[cid.Cid]bool{root: true}
	for _, f := range files {
		if len(f.SHA256) != 32 {
			continue
		}
		k := content.FileKey([32]byte(f.SHA256))
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Announce provides a held root and its file keys on the DHT.
func (n *Node) Announce(ctx context.Context, root cid.Cid) error {
	keys, err := n.Keys(root)
	if err != nil {
		return err
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			errs[i] = n.DHT.Provide(pctx, k, true)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("announce %s: %w", root, err)
	}
	return nil
}

// AnnounceAll provides every held root and puts every kept, live
// publisher record on the DHT again (DHT nodes drop records after 36 hours).
func (n *Node) AnnounceAll(ctx context.Context) error {
	roots, err := n.Index.Roots()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range n.Index.Records() {
		if s.Live(time.Now()) != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, recordTimeout)
		if err := n.DHT.PutValue(pctx, content.RecordKey(s.Key, s.Name), s.Envelope); err != nil {
			errs = append(errs, fmt.Errorf("republish %s/%s: %w", s.Key, s.Name, err))
		}
		cancel()
	}
	for _, r := range roots {
		c, err := cid.Decode(r.Root)
		if err == nil {
			err = n.Announce(ctx, c)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Reannounce announces every held root now and then every interval, until
// the node closes.
func (n *Node) Reannounce(interval time.Duration) {
	n.wg.Go(func() {
		for {
			if err := n.AnnounceAll(n.ctx); err != nil && n.ctx.Err() == nil {
				n.log.Warn("announce failed", "err", err)
			}
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	})
}

// Add imports a file or folder in place, records it in the index and
// announces it. A failed announce is logged, not an error: the daemon
// announces again later.
func (n *Node) Add(ctx context.Context, path string, progress func(int64)) (*AddResult, error) {
	res, err := AddOffline(ctx, n.Index, path, progress)
	if err != nil {
		return nil, err
	}
	if err := n.Announce(ctx, res.M.Root); err != nil {
		n.log.Warn("added but not announced yet", "root", res.Root, "err", err)
	} else {
		res.Announced = true
	}
	return res, nil
}
