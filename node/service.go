package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/mirror"
	"github.com/shoal-p2p/shoal/protocol"
)

// Codes are the sentinels that keep their identity across the local API:
// errors.Is(err, fetch.ErrNoProviders) holds for an error a daemon sent.
var Codes = api.Codes{
	{Name: "no_providers", Err: fetch.ErrNoProviders},
	{Name: "not_empty", Err: fetch.ErrNotEmpty},
	{Name: "integrity", Err: fetch.ErrIntegrity},
	{Name: "stalled", Err: fetch.ErrStalled},
	{Name: "no_source", Err: fetch.ErrNoSource},
	{Name: "folder_busy", Err: fetch.ErrFolderBusy},
	{Name: "not_signed", Err: ErrNotSigned},
	{Name: "unknown_publisher", Err: home.ErrUnknownPublisher},
	{Name: "no_record", Err: ErrNoRecord},
	{Name: "bad_ttl", Err: ErrBadTTL},
	{Name: "petname_taken", Err: home.ErrPetnameTaken},
	{Name: "daemon_running", Err: ErrDaemonRunning},
	{Name: "not_loopback", Err: home.ErrNotLoopback},
	{Name: "bad_manifest", Err: content.ErrBadManifest},
	{Name: "bad_record", Err: content.ErrBadRecord},
	{Name: "bad_cid", Err: content.ErrBadCID},
	{Name: "cid_not_allowed", Err: content.ErrHashNotAllowed},
	{Name: "nothing_to_add", Err: content.ErrNothingToAdd},
	{Name: "not_a_root", Err: content.ErrNotRoot},
	{Name: "bad_path", Err: content.ErrBadPath},
	{Name: "hash_mismatch", Err: content.ErrHashMismatch},
	{Name: "not_found", Err: content.ErrNotFound},
	{Name: "busy", Err: protocol.ErrBusy},
	{Name: "over_budget", Err: mirror.ErrOverBudget},
	{Name: "no_store", Err: mirror.ErrNoStore},
}

// Service is the node as an api.Service: what the daemon serves on its
// local API, and what a short-lived node does in process.
func (n *Node) Service() api.Service { return service{n} }

type service struct{ n *Node }

// ID describes the node, its addresses worth giving to others first:
// public direct ones, then LAN ones, then relayed ones, loopback last.
func (n *Node) ID() *api.IDInfo {
	info := &api.IDInfo{PeerID: n.Host.ID().String(), Daemon: n.ann != nil}
	addrs := n.Addrs()
	sort.SliceStable(addrs, func(i, j int) bool { return addrRank(addrs[i]) < addrRank(addrs[j]) })
	for _, a := range addrs {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info
}

// addrRank orders addresses by how useful they are to a stranger.
func addrRank(a ma.Multiaddr) int {
	switch {
	case isRelayAddr(a):
		return 2
	case manet.IsIPLoopback(a):
		return 3
	case manet.IsPublicAddr(a):
		return 0
	}
	return 1
}

func (s service) ID(context.Context) (*api.IDInfo, error)     { return s.n.ID(), nil }
func (s service) Status(context.Context) (*api.Status, error) { return s.n.Status(), nil }

func (s service) Ls(context.Context) ([]content.RootInfo, error) { return s.n.Index.Roots() }

func (s service) Files(_ context.Context, root cid.Cid) ([]content.FileInfo, error) {
	return heldFiles(s.n.Index, root)
}

// heldFiles lists a held root's files, or says this node does not hold it.
func heldFiles(idx *content.Index, root cid.Cid) ([]content.FileInfo, error) {
	files, err := idx.Files(root)
	if err != nil {
		return nil, notHeldErr(root, err)
	}
	return files, nil
}

// notHeldErr says this node does not hold root (err says how it looked).
func notHeldErr(root cid.Cid, err error) error {
	return fmt.Errorf("%s: %w (this node does not hold it)", root, err)
}

func (s service) Add(ctx context.Context, req api.AddRequest, progress func(api.Progress)) (*api.AddResult, error) {
	if !filepath.IsAbs(req.Path) {
		return nil, fmt.Errorf("%w: path %s is not absolute", api.ErrBadRequest, content.Quote(req.Path))
	}
	opt := content.ImportOptions{FollowExternalLinks: req.FollowExternalLinks, LinksWithin: req.LinksWithin, Name: req.Name}
	total := content.ImportSize(req.Path, opt)
	var done atomic.Int64
	stop := ticker(progress, func() api.Progress { return api.Progress{Phase: "hashing", Done: done.Load(), Total: total} })
	defer stop()
	opt.Progress = func(k int64) { done.Add(k) }
	res, err := s.n.Add(ctx, req.Path, opt)
	if err != nil {
		return nil, err
	}
	return &res.AddResult, nil
}

func (s service) Get(ctx context.Context, req api.GetRequest, progress func(api.Progress)) (*api.GetResult, error) {
	target := req.Dir
	if req.HFRepo != "" {
		target = req.HFRepo
	}
	if !filepath.IsAbs(target) {
		return nil, fmt.Errorf("%w: output folder %s is not absolute", api.ErrBadRequest, content.Quote(target))
	}
	choice := fetch.Choice{Include: req.Include, Exclude: req.Exclude, Tensors: req.Tensors}
	if err := choice.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if req.HFRepo != "" && !choice.Whole() {
		return nil, fmt.Errorf("%w: a Hugging Face cache snapshot holds the whole model: no --include, --exclude or --tensors with --hf-cache", api.ErrBadRequest)
	}
	opt := GetOptions{Force: req.Force, Publisher: req.Publisher, Choice: choice}
	if progress != nil {
		opt.Progress = func(p fetch.Progress) { progress(api.Progress(p)) }
	}
	root, rec, err := s.n.rootOf(ctx, req.Root, req.Name, "fetch")
	if err != nil {
		return nil, err
	}
	if rec != nil {
		opt.Publisher, opt.Records = rec.Key, [][]byte{rec.Envelope}
	}
	var res *GetResult
	var snap *api.HFSnapshot
	if req.HFRepo != "" {
		res, snap, err = s.n.getHF(ctx, root, req.HFRepo, opt)
	} else {
		res, err = s.n.Get(ctx, root, req.Dir, opt)
	}
	if err != nil {
		return nil, err
	}
	if s.n.ann != nil && !res.Partial {
		s.n.ann.add(root)
		s.n.checkFileKeys(root)
	}
	out := res.api()
	out.HF = snap
	return out, nil
}

func (s service) Inspect(ctx context.Context, req api.InspectRequest) (*content.ModelView, error) {
	root, _, err := s.n.rootOf(ctx, req.Root, req.Name, "inspect")
	if err != nil {
		return nil, err
	}
	return s.n.fetcher.Inspect(ctx, root)
}

// rootOf is root, or the root the newest record of name (KEYID/NAME)
// names, with that record.
func (n *Node) rootOf(ctx context.Context, root cid.Cid, name, what string) (cid.Cid, *content.Signed, error) {
	if name == "" {
		if !root.Defined() {
			return cid.Undef, nil, fmt.Errorf("%w: neither a root nor a name to %s", api.ErrBadRequest, what)
		}
		return root, nil, nil
	}
	keyID, nm, _ := home.SplitName(name)
	rec, err := n.resolveWaiting(ctx, keyID, nm)
	if err != nil {
		return cid.Undef, nil, err
	}
	return rec.Root.Cid, rec, nil
}

// api is the result as the API gives it.
func (r *GetResult) api() *api.GetResult {
	out := &api.GetResult{Root: r.Root, Dir: r.Dir, Files: r.Files, Size: r.Size, Elapsed: r.Elapsed, Peers: r.Peers,
		Chunks: r.Chunks, Resumed: r.Resumed, Refetch: r.Refetch, Local: r.Local, Held: r.Held, Signers: r.Signers, Pickle: r.Pickle,
		Partial: r.Partial, Shares: r.Shares,
		Sources: []api.SourceStat{}}
	for _, s := range r.Sources {
		out.Sources = append(out.Sources, api.SourceStat(s))
	}
	return out
}

func (s service) Verify(ctx context.Context, root cid.Cid, progress func(api.Progress)) (*api.VerifyReport, error) {
	return verify(ctx, s.n.Home, s.n.Index, root, progress)
}

// verify is Verify with progress snapshots.
func verify(ctx context.Context, h home.Home, idx *content.Index, root cid.Cid, progress func(api.Progress)) (*api.VerifyReport, error) {
	var total int64
	if ri, err := idx.Root(root); err == nil {
		total = ri.Size
	}
	var done atomic.Int64
	stop := ticker(progress, func() api.Progress { return api.Progress{Phase: "verifying", Done: done.Load(), Total: total} })
	defer stop()
	return Verify(ctx, h, idx, root, func(k int64) { done.Add(k) })
}

func (s service) Publish(ctx context.Context, req api.PublishRequest) (*api.PublishResult, error) {
	if err := CheckTTL(req.TTL); err != nil {
		return nil, err
	}
	key, err := s.n.Home.PublisherKey(req.Key)
	if err != nil {
		return nil, err
	}
	p, err := s.n.Publish(ctx, key, req.Name, req.Root, req.TTL)
	if err != nil {
		return nil, err
	}
	res := &api.PublishResult{Record: Signer(s.n.Home, p.Record), OnDHT: p.NotOnDHT == nil, Gossiped: p.Gossiped}
	if p.NotOnDHT != nil {
		res.Warning = p.NotOnDHT.Error()
	}
	return res, nil
}

func (s service) Resolve(ctx context.Context, req api.ResolveRequest) (*api.Signer, error) {
	rec, err := s.n.Resolve(ctx, req.Publisher, req.Name)
	if err != nil {
		return nil, err
	}
	sg := Signer(s.n.Home, rec)
	return &sg, nil
}

// ticker sends snap() to progress every 200 ms until stopped (nothing if
// progress is nil).
func ticker(progress func(api.Progress), snap func() api.Progress) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				progress(snap())
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// Dial connects to the daemon running on home, with the sentinels of
// Codes mapped back onto its errors. It fails with api.ErrNoDaemon when
// none runs.
func Dial(ctx context.Context, h home.Home) (*api.Client, error) {
	return api.Dial(ctx, h.APIPath(), h.TokenPath(), Codes)
}

// resolveWaiting resolves a name as Resolve does, but a node with no peer
// yet (one that finds its peers by mDNS, just started) waits for one, up
// to the find timeout, before it says no record exists.
func (n *Node) resolveWaiting(ctx context.Context, keyID, name string) (*content.Signed, error) {
	deadline := time.Now().Add(time.Duration(n.cfg.FindTimeout))
	for {
		rec, err := n.Resolve(ctx, keyID, name)
		if err == nil || !errors.Is(err, ErrNoRecord) || len(n.Host.Network().Peers()) > 0 || time.Now().After(deadline) {
			return rec, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
