package main

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/node"
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
			h, c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			var info node.IDInfo
			running := c != nil
			if running {
				if info, err = c.ID(cmd.Context()); err != nil {
					return err
				}
			} else {
				key, err := h.Key()
				if err != nil {
					return err
				}
				if info.PeerID, err = peerID(key); err != nil {
					return err
				}
				cfg, err := h.Config()
				if err != nil {
					return err
				}
				info.Addrs = cfg.Listen
			}
			if a.json {
				return a.printJSON(struct {
					node.IDInfo
					Running bool `json:"daemon_running"`
				}{info, running})
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
