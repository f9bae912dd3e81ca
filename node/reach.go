package node

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/shoal-p2p/shoal/protocol"
)

// relayMeter counts what this node's relay service carries.
type relayMeter struct {
	active       atomic.Bool
	bytes        atomic.Int64
	circuits     atomic.Int64 // open now
	circuitsAll  atomic.Int64
	reservations atomic.Int64 // open now
}

func (m *relayMeter) RelayStatus(enabled bool)              { m.active.Store(enabled) }
func (m *relayMeter) ConnectionOpened()                     { m.circuits.Add(1); m.circuitsAll.Add(1) }
func (m *relayMeter) ConnectionClosed(time.Duration)        { m.circuits.Add(-1) }
func (m *relayMeter) ConnectionRequestHandled(pbv2.Status)  {}
func (m *relayMeter) ReservationAllowed(isRenewal bool)     { m.reservationAdded(isRenewal) }
func (m *relayMeter) ReservationClosed(cnt int)             { m.reservations.Add(-int64(cnt)) }
func (m *relayMeter) ReservationRequestHandled(pbv2.Status) {}
func (m *relayMeter) BytesTransferred(cnt int)              { m.bytes.Add(int64(cnt)) }
func (m *relayMeter) reservationAdded(isRenewal bool) {
	if !isRenewal {
		m.reservations.Add(1)
	}
}

// watchReachability follows what AutoNAT says of this node.
func (n *Node) watchReachability() {
	sub, err := n.Host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return
	}
	n.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-n.ctx.Done():
				return
			case e := <-sub.Out():
				r := e.(event.EvtLocalReachabilityChanged).Reachability
				n.reach.Store(int32(r))
				n.log.Info("reachability", "now", reachName(r))
			}
		}
	})
}

func reachName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// Remembered peers: a daemon keeps a sample of the Shoal peers it has been
// connected to, and tries them at its next start beside its configured
// bootstrap peers, so that no single configured peer is needed once a node
// has been on the network.
const (
	rememberPeers = 32
	rememberEvery = time.Minute
)

// rememberPeersNow writes a sample of connected Shoal peers (those that
// speak the exchange protocol) to the home, with the addresses they were
// reached at. It keeps the old file when no peer is connected.
func (n *Node) rememberPeersNow() {
	if n.Home.Dir == "" {
		return
	}
	var addrs []string
	seen := map[peer.ID]bool{}
	for _, c := range n.Host.Network().Conns() {
		p := c.RemotePeer()
		if seen[p] || len(seen) >= rememberPeers || c.Stat().Limited {
			continue
		}
		if ok, _ := n.Host.Peerstore().SupportsProtocols(p, protocol.ID); len(ok) == 0 {
			continue
		}
		seen[p] = true
		for _, a := range n.Host.Peerstore().Addrs(p) {
			if manet.IsIPLoopback(a) && !manet.IsIPLoopback(c.RemoteMultiaddr()) {
				continue
			}
			addrs = append(addrs, a.Encapsulate(ma.StringCast("/p2p/"+p.String())).String())
		}
	}
	if len(addrs) == 0 {
		return
	}
	sort.Strings(addrs)
	if err := n.Home.RememberPeers(addrs); err != nil {
		n.log.Debug("remembering peers", "err", err)
	}
}

// rememberLoop keeps the sample fresh while the node runs, and once more
// when it stops.
func (n *Node) rememberLoop() {
	n.wg.Go(func() {
		t := time.NewTicker(rememberEvery)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				n.rememberPeersNow()
				return
			case <-t.C:
				n.rememberPeersNow()
			}
		}
	})
}
