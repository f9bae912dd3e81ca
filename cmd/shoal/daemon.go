package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/node"
)

func (a *app) daemonCmd() *cobra.Command {
	var nf netFlags
	var api, mode, metrics, hfEndpoint, gatewayAddr string
	var relayService bool
	var reach string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a node: serve, announce and fetch until stopped",
		Long: `Run a Shoal node until SIGINT or SIGTERM. It serves the chunks of every
model this node added or fetched, announces them on the DHT (now, every
12 hours, and again soon after a failure), and serves a local HTTP API on
127.0.0.1 only, guarded by a token written to the home folder (mode 0600).
Other shoal commands on the same home use the daemon when it runs. One
daemon per home. The API is up at once; joining the network goes on in the
background ('shoal status' shows how far it got).

Reaching peers, all on by default (config.toml keys in brackets): peers on
the LAN by mDNS [mdns]; whether this node is reachable by AutoNAT, and
answering others' AutoNAT [autonat]; a port forward on the home router by
UPnP/NAT-PMP [port_mapping]; behind NAT, a relay slot on a bootstrap peer
that runs a relay service [auto_relay], and hole punching to turn relayed
connections into direct ones [hole_punching]. --relay-service makes this
node a relay for others once it is publicly reachable (AutoNAT, or
--reachability public); a relay carries
hole punching, have-maps and manifests but never a whole model, unless
relay_data is true in its config.

For Hugging Face tools, --hf-endpoint 127.0.0.1:8385 serves the read side
of the Hub API: with HF_ENDPOINT=http://127.0.0.1:8385 (hubUrl in the JS
client), repo PUBLISHER/NAME is the newest model PUBLISHER signed as NAME,
and a revision may be a root CID it signed (publish a model before
clients look for it). --gateway 127.0.0.1:8386 serves held raw blocks
(/ipfs/CID with Accept: application/vnd.ipld.raw, IPFS trustless-gateway
style) and files (/models/CID/PATH, with Range). Both verify every chunk
they serve; a model asked for by name or at /models/ and not held is
fetched into the store first and pinned (reason "served": shoal pin rm
drops it). Both listen on loopback only.

Flags override config.toml for this run.`,
		Example: exampleBlock(
			"shoal daemon",
			"shoal daemon --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...",
			"shoal daemon --dht-mode server --relay-service --reachability public   # a mirror on a public address",
			"shoal daemon --no-mdns",
			"shoal daemon --hf-endpoint 127.0.0.1:8385   # then HF_ENDPOINT=http://127.0.0.1:8385",
			"shoal daemon --max-upload 20MB/s"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := a.home()
			if err != nil {
				return err
			}
			// config.toml, then the flags over it: at start, and again
			// on SIGHUP (flags still win).
			load := func() (home.Config, error) {
				cfg, err := h.Config()
				if err != nil {
					return cfg, err
				}
				nf.apply(&cfg)
				if api != "" {
					cfg.API = api
				}
				if mode != "" {
					cfg.DHTMode = mode
				}
				if metrics != "" {
					cfg.Metrics = metrics
				}
				if hfEndpoint != "" {
					cfg.HFEndpoint = hfEndpoint
				}
				if gatewayAddr != "" {
					cfg.Gateway = gatewayAddr
				}
				if relayService {
					cfg.RelayService = true
				}
				if reach != "" {
					cfg.Reachability = reach
				}
				return cfg, cfg.Validate()
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("log-level") {
				a.logLevel = "info"
				_ = a.setupLog()
			}
			return node.RunDaemon(cmd.Context(), h, cfg, slog.Default(), func(n *node.Node, apiAddr string) {
				reloadOnHUP(cmd.Context(), n, load)
				info := n.ID()
				if a.json {
					_ = a.printJSON(map[string]any{"peer_id": info.PeerID, "addrs": info.Addrs, "api": apiAddr})
					return
				}
				fmt.Fprintf(a.stdout, "shoal daemon ready\npeer %s\napi  %s\n", info.PeerID, apiAddr)
				if cfg.HFEndpoint != "" {
					fmt.Fprintf(a.stdout, "hugging face endpoint: HF_ENDPOINT=http://%s\n", home.LoopbackDefault(cfg.HFEndpoint))
				}
				if cfg.Gateway != "" {
					fmt.Fprintf(a.stdout, "gateway: http://%s/ipfs/CID, http://%s/models/CID/PATH\n", home.LoopbackDefault(cfg.Gateway), home.LoopbackDefault(cfg.Gateway))
				}
				for _, ad := range info.Addrs {
					fmt.Fprintf(a.stdout, "  %s\n", ad)
				}
			})
		},
	}
	nf.register(cmd.Flags(), "", "from config: port 4001 on every interface")
	cmd.Flags().StringVar(&api, "api", "", "loopback host:port for the local API (default from config, 127.0.0.1:0)")
	cmd.Flags().StringVar(&metrics, "metrics", "", "serve Prometheus metrics on host:port at /metrics (\":9464\": loopback; default from config: off)")
	cmd.Flags().StringVar(&hfEndpoint, "hf-endpoint", "", "serve a Hugging Face Hub-compatible read API on loopback host:port, for HF_ENDPOINT (\":8385\": loopback; default from config: off)")
	cmd.Flags().StringVar(&gatewayAddr, "gateway", "", "serve the HTTP gateway (/ipfs/CID, /models/CID/PATH) on loopback host:port (default from config: off)")
	cmd.Flags().StringVar(&mode, "dht-mode", "", "DHT mode: server (reachable nodes), client or auto")
	cmd.Flags().StringVar(&reach, "reachability", "", "auto (AutoNAT decides), or public/private to state it; a mirror on a public address says public")
	cmd.Flags().BoolVar(&relayService, "relay-service", false, "relay for peers behind NAT once this node is publicly reachable (mirrors); see relay_data in config")
	return cmd
}

// reloadOnHUP reloads the configuration on SIGHUP until ctx ends: what a
// running node can take (the rate caps) applies at once; a bad config is
// refused whole, the running settings kept; the log says which changed
// settings need a restart.
func reloadOnHUP(ctx context.Context, n *node.Node, load func() (home.Config, error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg, err := load()
			if err != nil {
				slog.Error("reload refused; the running settings stay", "err", err)
				continue
			}
			ignored, err := n.Reload(cfg)
			if err != nil {
				slog.Error("reload refused; the running settings stay", "err", err)
				continue
			}
			slog.Info("reloaded", "max_upload", cfg.MaxUpload, "max_download", cfg.MaxDownload, "need_restart", ignored)
		}
	}()
}
