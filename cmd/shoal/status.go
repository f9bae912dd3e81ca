package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show where the running daemon stands: reachability, DHTs, peers, announces",
		Long: `Ask the daemon on this home where it stands: its peer ID; whether others
can reach it (AutoNAT: public, private or unknown); its listen, observed
and relay addresses; the LAN and WAN DHTs (mode, why, routing-table size);
connected peers (direct, relayed, on the LAN); each held root and when it
was last announced; and bytes served and fetched since it started.
Needs a running daemon.`,
		Example: exampleBlock("shoal status", "shoal status --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, svc, _, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			st, err := svc.Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(st)
			}
			a.printStatus(st)
			return nil
		},
	}
}

// count says "1 peer", "2 peers".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (a *app) printStatus(st *api.Status) {
	w := a.stdout
	fmt.Fprintf(w, "peer          %s (up %s)\n", st.PeerID, st.Uptime)
	fmt.Fprintf(w, "reachability  %s\n", st.Reachability)
	list := func(label string, addrs []string) {
		if len(addrs) == 0 {
			fmt.Fprintf(w, "%-13s none\n", label)
			return
		}
		for i, ad := range addrs {
			if i == 0 {
				fmt.Fprintf(w, "%-13s %s\n", label, ad)
			} else {
				fmt.Fprintf(w, "%-13s %s\n", "", ad)
			}
		}
	}
	list("listen", st.ListenAddrs)
	list("observed", st.ObservedAddrs)
	list("relay addrs", st.RelayAddrs)
	b := st.Bootstrap
	if b.Tried == 0 {
		fmt.Fprintln(w, "bootstrap     no peers configured or remembered (LAN peers by mDNS only)")
	} else {
		fmt.Fprintf(w, "bootstrap     %s: %d of %d peers reached (%d remembered)\n", b.State, b.Reached, b.Tried, b.Remembered)
	}
	fmt.Fprintf(w, "dht lan       %s, %s (%s)\n", st.DHT.LAN.Mode, count(st.DHT.LAN.Peers, "peer"), st.DHT.LAN.Why)
	fmt.Fprintf(w, "dht wan       %s, %s (%s)\n", st.DHT.WAN.Mode, count(st.DHT.WAN.Peers, "peer"), st.DHT.WAN.Why)
	p := st.Peers
	fmt.Fprintf(w, "peers         %d connected: %d direct (%d on the LAN), %d relayed; %d speak Shoal\n", p.Total, p.Direct, p.LAN, p.Relayed, p.Shoal)
	mdns := "off"
	if st.MDNS {
		mdns = "on"
	}
	fmt.Fprintf(w, "mdns          %s\n", mdns)
	fmt.Fprintf(w, "traffic       %s served (%d chunks), %s fetched\n", content.HumanBytes(st.BytesServed), st.ChunksServed, content.HumanBytes(st.BytesFetched))
	last := "never"
	if !st.LastProvide.IsZero() {
		last = time.Since(st.LastProvide).Round(time.Second).String() + " ago"
	}
	fmt.Fprintf(w, "announce      %d waiting, last success %s\n", st.ProvideQueue, last)
	budget := "no budget"
	if st.StorageBudget > 0 {
		budget = "of " + content.HumanBytes(st.StorageBudget)
	}
	fmt.Fprintf(w, "store         %s %s; %d pins, %d followed publishers\n", content.HumanBytes(st.StorageUsed), budget, st.Pins, st.Follows)
	for _, e := range st.FollowErrors {
		fmt.Fprintf(w, "follow failed %s\n", content.Escape(e))
	}
	fmt.Fprintf(w, "refused       %d bad chunks from peers, %d rotten chunks here, %d forged records\n", st.BadChunks, st.Rotten, st.Rejected)
	if r := st.Relay; r != nil {
		state := "waiting for public reachability (AutoNAT, or --reachability public)"
		if r.Active {
			state = "active"
		}
		carries := "hole punching, have-maps and manifests (128 KiB, 2 min per connection)"
		if r.Data {
			carries = "anything (relay_data on)"
		}
		fmt.Fprintf(w, "relay         %s; carries %s; %d reservations, %d circuits open (%d in all), %s relayed\n",
			state, carries, r.Reservations, r.Circuits, r.CircuitsAll, content.HumanBytes(r.Bytes))
	}
	for _, f := range st.Fetching {
		fmt.Fprintf(w, "fetching      %s  %s of %s into %s\n", f.Root, content.HumanBytes(f.Done), content.HumanBytes(f.Total), f.Dir)
	}
	if len(st.Roots) == 0 {
		fmt.Fprintln(w, "roots         none held")
	}
	for i, r := range st.Roots {
		label := ""
		if i == 0 {
			label = "roots"
		}
		var s strings.Builder
		switch {
		case !r.Last.IsZero():
			fmt.Fprintf(&s, "announced %s ago", time.Since(r.Last).Round(time.Second))
		default:
			s.WriteString("not announced yet")
		}
		if r.Err != "" {
			fmt.Fprintf(&s, "; last try failed, again in %s: %s", time.Until(r.Next).Round(time.Second), r.Err)
		}
		fmt.Fprintf(w, "%-13s %s  %s\n", label, r.Root, s.String())
	}
}
