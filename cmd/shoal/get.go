package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/node"
)

func (a *app) getCmd() *cobra.Command {
	var out string
	var force bool
	var boot, listen []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get CID -o DIR",
		Short: "Fetch a model by CID into a folder, verified",
		Long: `Find who provides the model on the DHT, fetch its manifest, then fetch
every chunk from every provider, verifying each chunk's hash before it is
written. Each file is written under a temporary name and renamed into place
only when its whole-file sha256 matches. The fetched folder is then served
by this node.

With a daemon running, the daemon fetches (and keeps seeding). Without one,
an in-process node runs for the length of the command: give it
--bootstrap (or set bootstrap in config.json).

DIR must not exist or be empty, unless --force.`,
		Example: exampleBlock(
			"shoal get bafyrei... -o ./model",
			"shoal get bafyrei... -o ./model --bootstrap /ip4/198.51.100.4/tcp/4001/p2p/12D3KooW..."),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := content.ParseCID(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				return fmt.Errorf("missing -o DIR: where to write the model")
			}
			dir, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			if err := node.CheckOutputDir(dir, force); err != nil {
				return err
			}
			h, c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			b := a.newBar("fetching", 0)
			var res *node.GetResult
			if c != nil {
				res, err = c.Get(cmd.Context(), root.String(), dir, force, b.update)
			} else {
				res, err = a.getInProcess(cmd, h, root, dir, force, boot, listen, timeout, b)
			}
			b.finish()
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			for _, p := range res.Pickle {
				fmt.Fprintf(a.stderr, "note: %s is a pickle file: loading it can run code\n", content.Escape(p))
			}
			secs := res.Elapsed.Seconds()
			rate := float64(res.Size) / max(secs, 1e-3)
			fmt.Fprintf(a.stdout, "fetched %s: %d files, %s in %.1fs (%s/s) from %s, %d chunks re-fetched\n",
				res.Root, res.Files, humanBytes(res.Size), secs, humanBytes(int64(rate)), plural(res.Peers, "peer"), res.Refetch)
			fmt.Fprintln(a.stdout, res.Dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "folder to write the model to (required)")
	cmd.Flags().BoolVar(&force, "force", false, "write into an existing non-empty folder")
	cmd.Flags().StringArrayVar(&boot, "bootstrap", nil, "bootstrap peer multiaddr with /p2p/ID, without a daemon (repeatable)")
	cmd.Flags().StringArrayVar(&listen, "listen", nil, "listen multiaddr of the in-process node (default: any port, all interfaces)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to look for providers (default from config, 30s)")
	return cmd
}

func (a *app) getInProcess(cmd *cobra.Command, h node.Home, root cid.Cid, dir string, force bool, boot, listen []string, timeout time.Duration, b *bar) (*node.GetResult, error) {
	cfg, err := h.Config()
	if err != nil {
		return nil, err
	}
	cfg.Listen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	if len(boot) > 0 {
		cfg.Bootstrap = boot
	}
	if timeout > 0 {
		cfg.FindTimeout = node.Duration(timeout)
	}
	// A short-lived node asks the DHT but does not serve it.
	cfg.DHTMode = "client"
	if len(cfg.Bootstrap) == 0 {
		fmt.Fprintln(a.stderr, "note: no daemon and no bootstrap peers: only what this node already holds can be found")
	}
	n, closeNode, err := node.Open(h, cfg, slog.Default())
	if err != nil {
		return nil, err
	}
	defer closeNode()
	if err := n.Bootstrap(cmd.Context()); err != nil {
		return nil, err
	}
	return n.Get(cmd.Context(), root, dir, node.GetOptions{Force: force, Progress: b.update})
}
