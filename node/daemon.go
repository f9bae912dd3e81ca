package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"
	"golang.org/x/net/netutil"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/gateway"
	"github.com/shoal-p2p/shoal/hf"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/fsx"
	"github.com/shoal-p2p/shoal/internal/httpx"
)

// ReannounceInterval is how often a daemon announces what it holds again
// (provider records live 48 hours on the DHT).
const ReannounceInterval = 12 * time.Hour

// Open opens a home's index and starts a node on it (not yet
// bootstrapped). The returned close function stops the node and closes the
// index.
func Open(hm home.Home, cfg home.Config, log *slog.Logger) (*Node, func() error, error) {
	return open(hm, cfg, log, false)
}

// open is Open; with persist, the DHTs keep their records and provider
// records on disk in the home (a daemon: it restarts warm).
func open(hm home.Home, cfg home.Config, log *slog.Logger, persist bool) (*Node, func() error, error) {
	idx, err := content.OpenIndex(hm.IndexPath())
	if err != nil {
		if errors.Is(err, content.ErrLocked) {
			return nil, nil, ErrDaemonRunning
		}
		return nil, nil, err
	}
	key, err := hm.Key()
	if err != nil {
		idx.Close()
		return nil, nil, fmt.Errorf("identity key: %w", err)
	}
	var store *pebbleds.Datastore
	if persist {
		if store, err = pebbleds.NewDatastore(hm.DHTPath()); err != nil {
			idx.Close()
			return nil, nil, fmt.Errorf("DHT datastore: %w", err)
		}
	}
	closeStore := func() error {
		if store == nil {
			return nil
		}
		return store.Close()
	}
	var dstore ds.Batching
	if store != nil {
		dstore = store
	}
	n, err := newNode(cfg, key, idx, log, dstore)
	if err != nil {
		closeStore()
		idx.Close()
		return nil, nil, err
	}
	n.Home = hm
	n.keeper.Store = hm.StorePath()
	fkey, err := hm.FetchKey()
	if err != nil {
		n.Close()
		closeStore()
		idx.Close()
		return nil, nil, fmt.Errorf("fetch log key: %w", err)
	}
	n.fetcher.SetLogKey(fkey)
	// The DHTs do not close a datastore given to them: after them.
	return n, func() error { return errors.Join(n.Close(), closeStore(), idx.Close()) }, nil
}

// startDaemonLoops starts what only an always-on node does: keeping what
// it holds announced, and remembering the peers it meets.
func (n *Node) startDaemonLoops() {
	n.startAnnouncer(ReannounceInterval)
	n.rememberLoop()
	if err := n.startFollower(); err != nil {
		n.log.Warn("following publishers is off", "err", err)
	}
	if d := time.Duration(n.cfg.ScrubInterval); d > 0 {
		n.scrubLoop(d)
	}
	n.refetchLoop()
}

// metricsHandler serves /metrics.
func (n *Node) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.Metrics())
	return mux
}

// serveHTTP serves h on addr (a bare ":port" means loopback) until the
// node stops. No write timeout: a model file takes as long as it takes;
// the header and idle timeouts and the connection cap are the API's.
func (n *Node) serveHTTP(what, addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", home.LoopbackDefault(addr))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: api.Limits.Header, IdleTimeout: api.Limits.Idle, MaxHeaderBytes: 64 << 10}
	n.wg.Go(func() { _ = srv.Serve(netutil.LimitListener(ln, api.Limits.Conns)) })
	after := context.AfterFunc(n.ctx, func() { srv.Close() })
	n.log.Info(what, "addr", "http://"+ln.Addr().String())
	return func() { after(); srv.Close() }, nil
}

// RunDaemon runs a node on home until ctx ends: it serves blocks,
// announces what it holds (now, every ReannounceInterval, and again after
// failures), and serves the local API on cfg.API with a fresh token written
// to the home (mode 0600). The API is up before anything touches the
// network: bootstrapping goes on in the background and Status reports it.
// ready, if set, is called once the API listens.
func RunDaemon(ctx context.Context, hm home.Home, cfg home.Config, log *slog.Logger, ready func(*Node, string)) error {
	if err := home.CheckLoopback(cfg.API); err != nil {
		return err
	}
	n, closeNode, err := open(hm, cfg, log, true)
	if err != nil {
		return err
	}
	defer closeNode()
	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("local API: %w", err)
	}
	token := home.NewToken()
	if err := fsx.WriteFileAtomic(hm.TokenPath(), []byte(token+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	if err := fsx.WriteFileAtomic(hm.APIPath(), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(hm.APIPath())
	defer os.Remove(hm.TokenPath())
	for _, srv := range []struct {
		what, addr string
		h          func() http.Handler
	}{
		{"metrics", cfg.Metrics, n.metricsHandler},
		{"hugging face endpoint", cfg.HFEndpoint, func() http.Handler {
			return httpx.Guard("the Hugging Face endpoint", hf.NewEndpoint(models{n}, n.log.With("http", "hf")))
		}},
		{"gateway", cfg.Gateway, func() http.Handler { return gateway.New(models{n}, n.log.With("http", "gateway")) }},
	} {
		if srv.addr == "" {
			continue
		}
		stop, err := n.serveHTTP(srv.what, srv.addr, srv.h())
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	n.startDaemonLoops()
	n.wg.Go(func() {
		// An always-on node outlives its bootstrap peers' outages: the
		// DHT keeps trying them, so a failure here is only worth a
		// warning.
		if err := n.Bootstrap(n.ctx); err != nil && n.ctx.Err() == nil {
			n.log.Warn("bootstrap failed; will keep trying", "err", err)
		}
	})
	if ready != nil {
		ready(n, ln.Addr().String())
	}
	return api.Serve(ctx, ln, api.Handler(n.Service(), token, Codes))
}
