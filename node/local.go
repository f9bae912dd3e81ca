package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/mirror"
)

// Local is the api.Service of a home with no daemon running: what needs
// only the index (add, ls, files, verify) opens it for the call, and what
// needs the network (get, publish, resolve) runs a short-lived node for
// the call (Config.ShortLived: it announces nothing and answers no DHT
// queries).
type Local struct {
	Home home.Home
	// Config is the home's configuration with the command's overrides.
	Config home.Config
	// Listen, if set, replaces the short-lived node's listen addresses
	// (default: any free port on every interface, so that LAN peers and
	// hole punching can reach it).
	Listen []string
	Log    *slog.Logger
	// Note, if set, is told what the user should know (no bootstrap
	// peers, a failed bootstrap).
	Note func(msg string)
}

var _ api.Service = (*Local)(nil)

// shortLivedListen is where a short-lived node listens by default.
var shortLivedListen = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

func (l *Local) note(format string, args ...any) {
	if l.Note != nil {
		l.Note(fmt.Sprintf(format, args...))
	}
}

// withIndex opens the home's index for one call.
func (l *Local) withIndex(f func(*content.Index) error) error {
	idx, err := content.OpenIndex(l.Home.IndexPath())
	if errors.Is(err, content.ErrLocked) {
		return ErrDaemonRunning
	}
	if err != nil {
		return err
	}
	defer idx.Close()
	return f(idx)
}

// open starts a short-lived node on the home and bootstraps it.
func (l *Local) open(ctx context.Context) (*Node, func() error, error) {
	n, closeNode, err := l.start()
	if err != nil {
		return nil, nil, err
	}
	l.bootstrap(ctx, n)
	return n, closeNode, nil
}

// alone reports a short-lived node with no peer to start from: no
// bootstrap peers configured or given, none remembered.
func (l *Local) alone() bool {
	return len(l.Config.Bootstrap) == 0 && len(l.Home.RememberedPeers()) == 0
}

// bootstrap connects n to its bootstrap peers; a failure is only noted:
// peers on the LAN, and those that connect, may still help.
func (l *Local) bootstrap(ctx context.Context, n *Node) {
	if err := n.Bootstrap(ctx); err != nil {
		l.note("%s", content.OneLine(err.Error()))
	}
}

// start starts a short-lived node on the home.
func (l *Local) start() (*Node, func() error, error) {
	cfg := l.Config.ShortLived()
	cfg.Listen = shortLivedListen
	if len(l.Listen) > 0 {
		cfg.Listen = l.Listen
	}
	if l.alone() {
		where := "only this node itself is asked (pass --bootstrap ADDR)"
		if cfg.MDNS {
			where = "only peers on this LAN (mDNS) and this node itself are asked (pass --bootstrap ADDR)"
		}
		l.note("no daemon and no bootstrap peers: %s", where)
	}
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	return Open(l.Home, cfg, log)
}

// ID gives the home's peer ID and the configured listen addresses
// (nothing listens).
func (l *Local) ID(context.Context) (*api.IDInfo, error) {
	k, err := l.Home.Key()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return &api.IDInfo{PeerID: id.String(), Addrs: append([]string{}, l.Config.Listen...)}, nil
}

// Status needs a running daemon.
func (l *Local) Status(context.Context) (*api.Status, error) {
	return nil, fmt.Errorf("%w: status describes a running daemon (start one with shoal daemon)", api.ErrNoDaemon)
}

func (l *Local) Ls(context.Context) (roots []content.RootInfo, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		roots, err = idx.Roots()
		return err
	})
	return roots, err
}

func (l *Local) Files(_ context.Context, root cid.Cid) (files []content.FileInfo, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		files, err = heldFiles(idx, root)
		return err
	})
	return files, err
}

// Add records the folder in the index; a daemon announces it when it
// next starts.
func (l *Local) Add(ctx context.Context, req api.AddRequest, progress func(api.Progress)) (res *api.AddResult, err error) {
	if !filepath.IsAbs(req.Path) {
		return nil, fmt.Errorf("%w: path %s is not absolute", api.ErrBadRequest, content.Quote(req.Path))
	}
	opt := content.ImportOptions{FollowExternalLinks: req.FollowExternalLinks, LinksWithin: req.LinksWithin, Name: req.Name}
	if progress != nil {
		total := content.ImportSize(req.Path, opt)
		var done atomic.Int64
		opt.Progress = func(k int64) { progress(api.Progress{Phase: "hashing", Done: done.Add(k), Total: total}) }
	}
	err = l.withIndex(func(idx *content.Index) error {
		a, err := AddOffline(ctx, idx, req.Path, opt)
		if err == nil {
			res = &a.AddResult
		}
		return err
	})
	return res, err
}

func (l *Local) Verify(ctx context.Context, root cid.Cid, progress func(api.Progress)) (rep *api.VerifyReport, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		rep, err = verify(ctx, l.Home, idx, root, progress)
		return err
	})
	return rep, err
}

// Get fetches with a short-lived node. A bad output folder, or a root
// already held there (nothing to fetch), is known before any network
// traffic.
func (l *Local) Get(ctx context.Context, req api.GetRequest, progress func(api.Progress)) (*api.GetResult, error) {
	n, closeNode, err := l.start()
	if err != nil {
		return nil, err
	}
	defer closeNode()
	if req.Root.Defined() && req.HFRepo == "" {
		if done, err := n.CheckGet(req.Root, req.Dir, req.Force); err != nil {
			return nil, err
		} else if done {
			return n.Service().Get(ctx, req, progress)
		}
	}
	l.bootstrap(ctx, n)
	return n.Service().Get(ctx, req, progress)
}

// Inspect describes a model: from the index when it is held, else from
// its holders, by a node run for the command.
func (l *Local) Inspect(ctx context.Context, req api.InspectRequest) (*content.ModelView, error) {
	n, closeNode, err := l.start()
	if err != nil {
		return nil, err
	}
	defer closeNode()
	if _, err := n.Index.Root(req.Root); err != nil || req.Name != "" {
		l.bootstrap(ctx, n)
	}
	return n.Service().Inspect(ctx, req)
}

func (l *Local) Publish(ctx context.Context, req api.PublishRequest) (*api.PublishResult, error) {
	if err := CheckTTL(req.TTL); err != nil {
		return nil, err
	}
	n, closeNode, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeNode()
	return n.Service().Publish(ctx, req)
}

func (l *Local) Resolve(ctx context.Context, req api.ResolveRequest) (*api.Signer, error) {
	n, closeNode, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeNode()
	sg, err := n.Service().Resolve(ctx, req)
	if errors.Is(err, ErrNoRecord) && l.alone() && len(n.Host.Network().Peers()) == 0 {
		return nil, fmt.Errorf("%w; no daemon runs and no peer was reachable to ask: start one (shoal daemon) or pass --bootstrap ADDR", err)
	}
	return sg, err
}

// Pin pins a held root in the index; one not held is fetched into the
// store by a short-lived node first.
func (l *Local) Pin(ctx context.Context, req api.PinRequest, progress func(api.Progress)) (res *api.PinResult, err error) {
	held := false
	err = l.withIndex(func(idx *content.Index) error {
		if _, err := idx.Root(req.Root); err != nil {
			return nil
		}
		held = true
		res, err = l.keeper(idx).Pin(ctx, req.Root, "user", nil)
		return err
	})
	if held || err != nil {
		return res, err
	}
	n, closeNode, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeNode()
	return n.Service().Pin(ctx, req, progress)
}

// keeper is a keeper on idx for one call.
func (l *Local) keeper(idx *content.Index) *mirror.Keeper {
	budget, _ := home.ParseSize(l.Config.StorageMax)
	k := &mirror.Keeper{Index: idx, Store: l.Home.StorePath()}
	k.Budget.Store(budget)
	return k
}

func (l *Local) Unpin(_ context.Context, req api.PinRequest) (res *api.UnpinResult, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		res, err = unpin(idx, req.Root)
		return err
	})
	return res, err
}

func (l *Local) Pins(context.Context) (out []content.Pin, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		out, err = pins(idx)
		return err
	})
	return out, err
}

// GC collects with no fetch running in this home (a daemon would hold the
// index; a get without one records its root only once done).
func (l *Local) GC(ctx context.Context, req api.GCRequest) (rep *api.GCReport, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		rep, err = l.keeper(idx).GC(ctx, req.DryRun)
		return err
	})
	return rep, err
}

// Follow records a followed publisher; a daemon follows it when it next
// starts.
func (l *Local) Follow(_ context.Context, req api.FollowRequest) (fi *api.FollowInfo, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		key, err := follow(l.Home, idx, req)
		if err == nil {
			fi, err = followInfo(l.Home, idx, key)
		}
		return err
	})
	return fi, err
}

func (l *Local) Unfollow(_ context.Context, req api.FollowRequest) (fi *api.FollowInfo, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		key, err := unfollow(l.Home, idx, req)
		fi = &api.FollowInfo{Key: key, Names: []api.FollowedName{}}
		return err
	})
	return fi, err
}

func (l *Local) Follows(context.Context) (out []api.FollowInfo, err error) {
	err = l.withIndex(func(idx *content.Index) error {
		out, err = follows(l.Home, idx)
		return err
	})
	return out, err
}

// Scrub runs on a short-lived node: healing fetches from peers.
func (l *Local) Scrub(ctx context.Context, req api.ScrubRequest, progress func(api.Progress)) (*api.ScrubReport, error) {
	n, closeNode, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeNode()
	return n.Service().Scrub(ctx, req, progress)
}
