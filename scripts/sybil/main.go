// Command sybil is a hostile crowd for the NAT test (threat 9): it starts
// many libp2p hosts, each with a peer ID of its own, all on one IP
// address, each running a DHT server under Shoal's prefix, and connects
// each to a target peer. After a while it prints how many hosts the
// target still keeps a connection with, as JSON, and exits.
//
//	sybil --target ADDR --ip 7.7.7.50 [--n 40] [--wait 10s]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-p2p/shoal/node"
)

func main() {
	target := flag.String("target", "", "multiaddr of the peer to crowd, with /p2p/ID")
	ip := flag.String("ip", "127.0.0.1", "the one IPv4 address every host listens on")
	n := flag.Int("n", 40, "hosts (peer IDs) to start")
	wait := flag.Duration("wait", 10*time.Second, "how long to stay connected before counting")
	flag.Parse()
	if err := run(*target, *ip, *n, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "sybil:", err)
		os.Exit(1)
	}
}

func run(target, ip string, n int, wait time.Duration) error {
	m, err := ma.NewMultiaddr(target)
	if err != nil {
		return err
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+time.Minute)
	defer cancel()
	var hosts []host.Host
	dialed := 0
	for range n {
		h, err := libp2p.New(libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/tcp/0", ip)), libp2p.ForceReachabilityPublic())
		if err != nil {
			return err
		}
		defer h.Close()
		d, err := dht.New(h, dht.ProtocolPrefix(node.DHTPrefix), dht.Mode(dht.ModeServer), dht.BootstrapPeers(*ai))
		if err != nil {
			return err
		}
		defer d.Close()
		hosts = append(hosts, h)
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		if h.Connect(cctx, *ai) == nil {
			dialed++
		}
		ccancel()
		_ = d.Bootstrap(ctx)
	}
	time.Sleep(wait)
	kept := 0
	for _, h := range hosts {
		if h.Network().Connectedness(ai.ID) == network.Connected {
			kept++
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int{"hosts": n, "connected_at_first": dialed, "connected_after": kept})
}
