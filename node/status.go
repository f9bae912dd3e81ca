package node

import (
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/protocol"
)

// Status reports where the node stands now.
func (n *Node) Status() *api.Status {
	st := &api.Status{
		ListenAddrs:   []string{},
		ObservedAddrs: []string{},
		RelayAddrs:    []string{},
		Roots:         []api.RootStatus{},
		Fetching:      []api.FetchStatus{},
		PeerID:        n.Host.ID().String(),
		Uptime:        time.Since(n.started).Round(time.Second).String(),
		Reachability:  reachName(network.Reachability(n.reach.Load())),
		MDNS:          n.mdns != nil,
		BytesServed:   n.served.Load(),
		BytesFetched:  n.fetched.Load(),
		ChunksServed:  n.chunksServed.Load(),
		BadChunks:     n.badChunks.Load(),
		Rotten:        n.rotten.Load(),
		StorageUsed:   n.keeper.Used(),
		StorageBudget: n.keeper.Budget.Load(),
	}
	st.ProvideQueue, st.LastProvide = n.provideQueue()
	if pins, err := n.Index.Pins(); err == nil {
		st.Pins = len(pins)
	}
	if fs, err := n.Index.Follows(); err == nil {
		st.Follows = len(fs)
	}
	st.FollowErrors = []string{}
	if n.follower != nil {
		st.Rejected = n.follower.Rejected()
		for r, why := range n.follower.Failures() {
			if _, err := n.Index.Root(r); err != nil {
				st.FollowErrors = append(st.FollowErrors, r.String()+": "+why)
			}
		}
		sort.Strings(st.FollowErrors)
	}
	listen := map[string]bool{}
	if ifaces, err := n.Host.Network().InterfaceListenAddresses(); err == nil {
		for _, a := range ifaces {
			listen[a.String()] = true
			if !isRelayAddr(a) { // the relay transport "listens" on /p2p-circuit
				st.ListenAddrs = append(st.ListenAddrs, a.String())
			}
		}
	}
	sort.Strings(st.ListenAddrs)
	for _, a := range n.Host.Addrs() {
		switch {
		case isRelayAddr(a):
			st.RelayAddrs = append(st.RelayAddrs, a.String())
		case !listen[a.String()]:
			st.ObservedAddrs = append(st.ObservedAddrs, a.String())
		}
	}
	n.boot.mu.Lock()
	st.Bootstrap = api.BootStatus{State: n.boot.state, Tried: n.boot.tried, Remembered: n.boot.remembered, Reached: n.boot.reached, Error: n.boot.err}
	n.boot.mu.Unlock()
	if st.Bootstrap.State == "" {
		st.Bootstrap.State = "not started"
	}
	protos := map[string]bool{}
	for _, p := range n.Host.Mux().Protocols() {
		protos[string(p)] = true
	}
	st.DHT.LAN = api.DHTStatus{Peers: n.DHT.LAN.RoutingTable().Size(), Mode: "client", Why: "dht_mode " + n.cfg.DHTMode}
	if protos[DHTPrefix+"/lan/kad/1.0.0"] {
		st.DHT.LAN.Mode = "server"
	}
	st.DHT.WAN = api.DHTStatus{Peers: n.DHT.WAN.RoutingTable().Size(), Mode: "client", Why: "dht_mode " + n.cfg.DHTMode}
	if protos[DHTPrefix+"/kad/1.0.0"] {
		st.DHT.WAN.Mode = "server"
	}
	if n.cfg.DHTMode == "auto" {
		st.DHT.WAN.Why = "follows AutoNAT: reachability " + st.Reachability
		if n.cfg.Reachability != "auto" {
			st.DHT.WAN.Why = "follows reachability, set to " + n.cfg.Reachability + " in config"
		} else if !n.cfg.AutoNAT {
			st.DHT.WAN.Why = "follows AutoNAT, which is off (autonat false): stays a client"
		}
	}
	st.Peers = n.peerCounts()
	if n.ann != nil {
		for root, as := range n.ann.snapshot() {
			c, err := cid.Decode(root)
			if err != nil {
				continue
			}
			st.Roots = append(st.Roots, api.RootStatus{Root: c, Last: as.Last, Err: as.Err, Next: as.Next})
		}
		sort.Slice(st.Roots, func(i, j int) bool { return st.Roots[i].Root.KeyString() < st.Roots[j].Root.KeyString() })
	}
	for _, f := range n.fetcher.Running() {
		st.Fetching = append(st.Fetching, api.FetchStatus{Root: f.Root, Dir: f.Dir, Done: f.Done, Total: f.Total})
	}
	sort.Slice(st.Fetching, func(i, j int) bool { return st.Fetching[i].Dir < st.Fetching[j].Dir })
	if n.relay != nil {
		st.Relay = &api.RelayService{Active: n.relay.active.Load(), Data: n.cfg.RelayData, Bytes: n.relay.bytes.Load(),
			Circuits: n.relay.circuits.Load(), CircuitsAll: n.relay.circuitsAll.Load(), Reservations: n.relay.reservations.Load()}
	}
	return st
}

func (n *Node) peerCounts() api.PeerCounts {
	var pc api.PeerCounts
	for _, p := range n.Host.Network().Peers() {
		pc.Total++
		direct, lan := false, false
		for _, c := range n.Host.Network().ConnsToPeer(p) {
			ra := c.RemoteMultiaddr()
			if isRelayAddr(ra) {
				continue
			}
			direct = true
			if manet.IsPrivateAddr(ra) || manet.IsIPLoopback(ra) {
				lan = true
			}
		}
		switch {
		case lan:
			pc.LAN++
			pc.Direct++
		case direct:
			pc.Direct++
		default:
			pc.Relayed++
		}
		if ok, _ := n.Host.Peerstore().SupportsProtocols(p, protocol.ID); len(ok) > 0 {
			pc.Shoal++
		}
	}
	return pc
}

// isRelayAddr reports a /p2p-circuit address.
func isRelayAddr(a ma.Multiaddr) bool {
	return strings.Contains(a.String(), "/p2p-circuit")
}
