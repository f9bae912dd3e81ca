package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the home folder: identity key and default config",
		Long: `Create the home folder (mode 0700) with a new ed25519 identity key (0600)
and a config.toml with defaults: listen on TCP and QUIC port 4001, no
bootstrap peers (Shoal contacts no public network unless told to), the
local API on 127.0.0.1. Existing files are kept. Other commands create the
home on first use too.`,
		Example: exampleBlock("shoal init", "shoal --home /srv/shoal init"),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			key, err := h.Key()
			if err != nil {
				return err
			}
			id, err := peerID(key)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"home": h.Dir, "peer_id": id})
			}
			fmt.Fprintf(a.stdout, "home %s\npeer %s\n", h.Dir, id)
			return nil
		},
	}
}
