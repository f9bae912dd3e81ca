package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/protocol"
)

// The node is the fetch engine's network.
var _ fetch.Network = (*Node)(nil)

// Self is this node's peer ID.
func (n *Node) Self() peer.ID { return n.Host.ID() }

// PeerInfo is what the peerstore knows of how to reach p.
func (n *Node) PeerInfo(p peer.ID) peer.AddrInfo { return n.Host.Peerstore().PeerInfo(p) }

// FindProviders streams the providers of key on the LAN and WAN DHTs.
func (n *Node) FindProviders(ctx context.Context, key cid.Cid) <-chan peer.AddrInfo {
	return n.DHT.FindProvidersAsync(ctx, key, 0)
}

// Provide announces key, if this node announces at all (a short-lived
// fetcher does not).
func (n *Node) Provide(ctx context.Context, key cid.Cid) error {
	if n.ann == nil {
		return nil
	}
	return n.provide(ctx, key)
}

// ExchangePeers lists the connected peers that speak the exchange, and
// tells joined of each peer that starts to, until ctx ends.
func (n *Node) ExchangePeers(ctx context.Context, joined func(peer.ID)) []peer.ID {
	sub, err := n.Host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		n.log.Warn("peer events", "err", err)
	} else {
		n.wg.Go(func() {
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case <-n.ctx.Done():
					return
				case e := <-sub.Out():
					switch ev := e.(type) {
					case event.EvtPeerIdentificationCompleted:
						if slices.Contains(ev.Protocols, protocol.ID) {
							joined(ev.Peer)
						}
					case event.EvtPeerProtocolsUpdated:
						if slices.Contains(ev.Added, protocol.ID) {
							joined(ev.Peer)
						}
					}
				}
			}
		})
	}
	var out []peer.ID
	for _, p := range n.Host.Network().Peers() {
		if ok, _ := n.Host.Peerstore().SupportsProtocols(p, protocol.ID); len(ok) > 0 {
			out = append(out, p)
		}
	}
	return out
}

func (n *Node) Dial(ctx context.Context, p peer.AddrInfo) (fetch.Conn, bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.Host.Connect(cctx, p); err != nil {
		return nil, false, err
	}
	n.awaitDirect(cctx, p.ID)
	// Over a relay's limited connection only when no direct one came: a
	// relay without relay_data cuts it after 128 KiB, enough for
	// have-maps and manifests, not for a model.
	s, err := n.Host.NewStream(network.WithAllowLimitedConn(cctx, "shoal"), p.ID, protocol.ID)
	if err != nil {
		return nil, false, err
	}
	relayed := isRelayAddr(s.Conn().RemoteMultiaddr())
	// The peer closes a stream left idle for a few seconds (a worker with
	// nothing to take, a have-map asked now and then): the client then
	// opens another.
	reopen := func(ctx context.Context) (protocol.Stream, error) {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s, err := n.Host.NewStream(network.WithAllowLimitedConn(rctx, "shoal"), p.ID, protocol.ID)
		if err != nil {
			return nil, err
		}
		return limitStream(s, nil, n.down, nil, &n.fetched), nil
	}
	cl := protocol.NewReopeningClient(limitStream(s, nil, n.down, nil, &n.fetched), reopen)
	// A request times out when the stream stops delivering, not after a
	// fixed time from when it was queued: on a capped or slow link a
	// chunk, and the chunks queued before it, take longer than that.
	cl.Timeout = time.Duration(n.cfg.RequestTimeout)
	cl.FirstByte = firstByteTimeout
	return sourceConn{cl, n.addSourcePeer(p.ID)}, relayed, nil
}

// sourceConn is an exchange client that, until closed, lets its peer's
// streams to us count as a source's, not a stranger's.
type sourceConn struct {
	*protocol.Client
	done func()
}

func (c sourceConn) Close() error {
	defer c.done()
	return c.Client.Close()
}

// firstByteTimeout is how long a source that has sent no block yet may
// send nothing at all after a request before it loses its work to others
// (request_timeout applies once it has delivered).
const firstByteTimeout = 5 * time.Second

// directWait bounds the wait for hole punching to turn a relayed
// connection into a direct one before a source settles for the relay.
const directWait = 8 * time.Second

// awaitDirect waits, at most directWait, while every connection to p goes
// through a relay: DCUtR is usually punching a hole meanwhile.
func (n *Node) awaitDirect(ctx context.Context, p peer.ID) {
	direct := func() bool {
		for _, c := range n.Host.Network().ConnsToPeer(p) {
			if !isRelayAddr(c.RemoteMultiaddr()) {
				return true
			}
		}
		return false
	}
	if direct() || !n.cfg.HolePunching {
		return
	}
	deadline := time.Now().Add(directWait)
	for !direct() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !direct() {
		n.log.Info("no direct connection; using the relay", "peer", p)
	}
}

// Strikes: a peer that sent bad data is dropped from the fetch at once and
// not used again by this node for a while once it has a few strikes.
const (
	maxStrikes   = 3
	strikeMemory = time.Hour
)

type strikes struct {
	mu sync.Mutex
	m  map[peer.ID][]time.Time
}

// Strike records that p sent bad data.
func (n *Node) Strike(p peer.ID) {
	if p == "" {
		return
	}
	n.badChunks.Add(1)
	n.strikes.mu.Lock()
	defer n.strikes.mu.Unlock()
	if n.strikes.m == nil {
		n.strikes.m = map[peer.ID][]time.Time{}
	}
	n.strikes.m[p] = append(n.strikes.m[p], time.Now())
}

// Banned reports a peer with too many recent strikes.
func (n *Node) Banned(p peer.ID) bool {
	n.strikes.mu.Lock()
	defer n.strikes.mu.Unlock()
	recent := 0
	for _, t := range n.strikes.m[p] {
		if time.Since(t) < strikeMemory {
			recent++
		}
	}
	return recent >= maxStrikes
}
