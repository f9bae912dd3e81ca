package node

import (
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/shoal-p2p/shoal/protocol"
)

// Status says where a node stands: how others can reach it, what its DHTs
// know, who it is connected to, and what it announces.
type Status struct {
	PeerID string `json:"peer_id"`
	Uptime string `json:"uptime"`
	// Reachability is what AutoNAT found: "public", "private" or
	// "unknown" (not yet known, or AutoNAT is off).
	Reachability  string        `json:"reachability"`
	ListenAddrs   []string      `json:"listen_addrs"`   // on this machine's interfaces
	ObservedAddrs []string      `json:"observed_addrs"` // as others see this node (NAT, port mapping)
	RelayAddrs    []string      `json:"relay_addrs"`    // reachable through a relay
	Bootstrap     BootStatus    `json:"bootstrap"`
	DHT           DHTsStatus    `json:"dht"`
	Peers         PeerCounts    `json:"peers"`
	MDNS          bool          `json:"mdns"`
	Roots         []RootStatus  `json:"roots"`
	Fetching      []FetchStatus `json:"fetching"`      // fetches in progress (served from as they go)
	BytesServed   int64         `json:"bytes_served"`  // exchange bytes sent since start
	BytesFetched  int64         `json:"bytes_fetched"` // exchange bytes received since start
	Relay         *RelayService `json:"relay,omitempty"`
}

// BootStatus is how bootstrapping went.
type BootStatus struct {
	State      string `json:"state"` // "connecting", "done", "failed" (retried by the DHT)
	Tried      int    `json:"tried"` // configured and remembered peers
	Remembered int    `json:"remembered"`
	Reached    int    `json:"reached"`
	Error      string `json:"error,omitempty"`
}

// DHTsStatus describes the LAN and WAN DHTs.
type DHTsStatus struct {
	LAN DHTStatus `json:"lan"`
	WAN DHTStatus `json:"wan"`
}

// DHTStatus describes one DHT.
type DHTStatus struct {
	Mode  string `json:"mode"`  // "server" (answers queries) or "client"
	Why   string `json:"why"`   // what decided the mode
	Peers int    `json:"peers"` // routing-table size
}

// PeerCounts splits the connected peers by how they are reached.
type PeerCounts struct {
	Total   int `json:"total"`
	Direct  int `json:"direct"`  // at least one direct connection
	Relayed int `json:"relayed"` // only through a relay
	LAN     int `json:"lan"`     // directly, over a private or loopback address
	Shoal   int `json:"shoal"`   // speak Shoal's exchange protocol
}

// RootStatus is one held root and its announce.
type RootStatus struct {
	Root string `json:"root"`
	announceState
}

// FetchStatus is a fetch in progress.
type FetchStatus struct {
	Root  string `json:"root"`
	Dir   string `json:"dir"`
	Done  int64  `json:"done"`  // bytes verified and written
	Total int64  `json:"total"` // bytes in the model
}

// RelayService is what this node's relay service carries.
type RelayService struct {
	Active       bool  `json:"active"` // serving (needs public reachability)
	Data         bool  `json:"data"`   // whole models may cross it (relay_data)
	Bytes        int64 `json:"bytes"`  // relayed since start
	Circuits     int64 `json:"circuits"`
	CircuitsAll  int64 `json:"circuits_total"`
	Reservations int64 `json:"reservations"`
}

// Status reports where the node stands now.
func (n *Node) Status() Status {
	st := Status{
		ListenAddrs:   []string{},
		ObservedAddrs: []string{},
		RelayAddrs:    []string{},
		Roots:         []RootStatus{},
		Fetching:      []FetchStatus{},
		PeerID:        n.Host.ID().String(),
		Uptime:        time.Since(n.started).Round(time.Second).String(),
		Reachability:  reachName(network.Reachability(n.reach.Load())),
		MDNS:          n.mdns != nil,
		BytesServed:   n.served.Load(),
		BytesFetched:  n.fetched.Load(),
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
	st.Bootstrap = BootStatus{State: n.boot.state, Tried: n.boot.tried, Remembered: n.boot.remembered, Reached: n.boot.reached, Error: n.boot.err}
	n.boot.mu.Unlock()
	if st.Bootstrap.State == "" {
		st.Bootstrap.State = "not started"
	}
	protos := map[string]bool{}
	for _, p := range n.Host.Mux().Protocols() {
		protos[string(p)] = true
	}
	st.DHT.LAN = DHTStatus{Peers: n.DHT.LAN.RoutingTable().Size(), Mode: "client", Why: "dht_mode " + n.cfg.DHTMode}
	if protos[DHTPrefix+"/lan/kad/1.0.0"] {
		st.DHT.LAN.Mode = "server"
	}
	st.DHT.WAN = DHTStatus{Peers: n.DHT.WAN.RoutingTable().Size(), Mode: "client", Why: "dht_mode " + n.cfg.DHTMode}
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
			st.Roots = append(st.Roots, RootStatus{Root: root, announceState: as})
		}
		sort.Slice(st.Roots, func(i, j int) bool { return st.Roots[i].Root < st.Roots[j].Root })
	}
	for _, f := range n.fetcher.Running() {
		st.Fetching = append(st.Fetching, FetchStatus{Root: f.Root.String(), Dir: f.Dir, Done: f.Done, Total: f.Total})
	}
	sort.Slice(st.Fetching, func(i, j int) bool { return st.Fetching[i].Root < st.Fetching[j].Root })
	if n.relay != nil {
		st.Relay = &RelayService{Active: n.relay.active.Load(), Data: n.cfg.RelayData, Bytes: n.relay.bytes.Load(),
			Circuits: n.relay.circuits.Load(), CircuitsAll: n.relay.circuitsAll.Load(), Reservations: n.relay.reservations.Load()}
	}
	return st
}

func (n *Node) peerCounts() PeerCounts {
	var pc PeerCounts
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
