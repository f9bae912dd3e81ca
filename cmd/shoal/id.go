package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
)

func peerID(k crypto.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(k)
	return id.String(), err
}

func (a *app) idCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Show this node's peer ID and listen addresses",
		Long: `Show this node's peer ID and, when a daemon runs, the addresses it listens
on (give one of them to others as --bootstrap). Without a daemon it shows
the configured listen addresses.`,
		Example: exampleBlock("shoal id", "shoal id --json"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, svc, running, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			info, err := svc.ID(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(info)
			}
			fmt.Fprintf(a.stdout, "peer %s\n", info.PeerID)
			if !running {
				fmt.Fprintln(a.stdout, "daemon not running; configured listen addresses:")
			}
			for _, ad := range info.Addrs {
				fmt.Fprintf(a.stdout, "  %s\n", ad)
			}
			return nil
		},
	}
}
