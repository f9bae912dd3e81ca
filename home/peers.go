package home

import (
	"encoding/json"
	"os"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoal-p2p/shoal/internal/fsx"
)

// RememberedPeers returns the peers kept in the home (none if there is no
// file or it does not parse).
func (h Home) RememberedPeers() []peer.AddrInfo {
	b, err := os.ReadFile(h.PeersPath())
	if err != nil {
		return nil
	}
	var addrs []string
	if json.Unmarshal(b, &addrs) != nil {
		return nil
	}
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			continue
		}
		if i := slices.IndexFunc(out, func(x peer.AddrInfo) bool { return x.ID == ai.ID }); i >= 0 {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		out = append(out, *ai)
	}
	return out
}

// RememberPeers replaces the remembered peers with addrs (multiaddrs
// with /p2p/ID).
func (h Home) RememberPeers(addrs []string) error {
	b, _ := json.MarshalIndent(addrs, "", "  ")
	return fsx.WriteFileAtomic(h.PeersPath(), append(b, '\n'), 0o600)
}
