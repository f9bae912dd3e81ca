package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/mirror"
)

// RepublishInterval is how often a daemon gossips the records it keeps
// of the publishers it follows or is (on top of a republish whenever a
// peer joins one of their topics).
const RepublishInterval = 10 * time.Minute

// newKeeper makes the node's keeper: pins, gc and the store's budget.
func (n *Node) newKeeper() {
	budget, _ := home.ParseSize(n.cfg.StorageMax) // validated
	n.keeper = &mirror.Keeper{Index: n.Index, Running: func() []cid.Cid {
		var out []cid.Cid
		for _, r := range n.fetcher.Running() {
			out = append(out, r.Root)
		}
		return out
	}}
	n.keeper.Budget.Store(budget)
}

// startFollower starts gossipsub and the follower: the daemon joins its
// own keys' topics (to publish), and follows the publishers in the index.
func (n *Node) startFollower() error {
	ps, err := mirror.NewPubSub(n.ctx, n.Host, drouting.NewRoutingDiscovery(n.DHT))
	if err != nil {
		return err
	}
	f := &mirror.Follower{Index: n.Index, PS: ps, Self: n.Host.ID(), Log: n.log,
		Check: time.Duration(n.cfg.FollowCheck), Republish: RepublishInterval,
		Resolve: n.Resolve,
		Pin:     n.followPin,
	}
	var own []string
	if n.Home.Dir != "" {
		if keys, err := n.Home.Keys(); err == nil {
			for _, k := range keys {
				own = append(own, k.ID)
			}
		}
	}
	if err := f.Start(n.ctx, own); err != nil {
		return err
	}
	n.follower = f
	n.wg.Go(func() { <-n.ctx.Done(); f.Wait() })
	return nil
}

// followPin fetches and pins a followed name's new root. Over budget, it
// makes room: the older roots pinned for the same name are unpinned (the
// name has moved on; a mirror keeps its newest version first), gc
// collects what nobody pinned, and the fetch is tried once more.
func (n *Node) followPin(ctx context.Context, root cid.Cid, reason string) error {
	_, err := n.pin(ctx, root, reason, nil)
	if err == nil || !isOverBudget(err) {
		return err
	}
	if pins, perr := n.Index.Pins(); perr == nil {
		for _, p := range pins {
			if p.Reason == reason && p.Root != root {
				_, _ = n.Index.Unpin(p.Root)
			}
		}
	}
	rep, gerr := n.gc(ctx, false)
	if gerr != nil || rep.Freed == 0 {
		return err
	}
	n.log.Info("collected to make room for a followed model", "root", root, "freed", content.HumanBytes(rep.Freed), "items", len(rep.Items))
	_, err = n.pin(ctx, root, reason, nil)
	return err
}

// refetchPins fetches again, into the store, every pinned root this node
// no longer holds (its copies were deleted or moved away, and gc forgot
// them): a pin is a promise to keep the model. Pins taken by add are
// not: removing a folder you added is removing it.
func (n *Node) refetchPins(ctx context.Context) {
	pins, err := n.Index.Pins()
	if err != nil {
		return
	}
	for _, p := range pins {
		if ctx.Err() != nil {
			return
		}
		// A folder the user added and then removed is theirs to remove:
		// not fetched back.
		if p.Reason == "add" {
			continue
		}
		if _, err := n.Index.Root(p.Root); !errors.Is(err, content.ErrNotFound) {
			continue
		}
		if _, err := n.pin(ctx, p.Root, p.Reason, nil); err != nil {
			n.log.Warn("fetching a pinned model this node no longer holds", "root", p.Root, "err", err)
		} else {
			n.log.Info("fetched a pinned model this node no longer held", "root", p.Root)
		}
	}
}

// refetchLoop runs refetchPins now and then (every follow_check).
func (n *Node) refetchLoop() {
	n.every(time.Duration(n.cfg.FollowCheck), func() { n.refetchPins(n.ctx) })
}

// every runs f every interval until the node closes.
func (n *Node) every(interval time.Duration, f func()) {
	n.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	})
}

// gc collects (mirror.Keeper.GC) and stops announcing what went.
func (n *Node) gc(ctx context.Context, dryRun bool) (*api.GCReport, error) {
	rep, err := n.keeper.GC(ctx, dryRun)
	if err == nil && !dryRun && n.ann != nil {
		n.ann.forget(gcGone(n.Index, rep))
	}
	return rep, err
}

// pin pins root for reason, fetching it into the store when it is not
// held; a daemon then announces it.
func (n *Node) pin(ctx context.Context, root cid.Cid, reason string, progress func(api.Progress)) (*api.PinResult, error) {
	if err := content.CheckRoot(root); err != nil {
		return nil, err
	}
	res, err := n.keeper.Pin(ctx, root, reason, func(ctx context.Context, dir string, admit func(*content.Manifest) error) (*api.GetResult, error) {
		opt := GetOptions{Stored: true, Admit: admit}
		if progress != nil {
			opt.Progress = func(p fetch.Progress) { progress(api.Progress(p)) }
		}
		got, err := n.Get(ctx, root, dir, opt)
		if err != nil {
			return nil, err
		}
		return got.api(), nil
	})
	if err != nil {
		return nil, err
	}
	if res.Fetched != nil && n.ann != nil {
		n.ann.add(root)
		n.checkFileKeys(root)
	}
	return res, nil
}

func (s service) Pin(ctx context.Context, req api.PinRequest, progress func(api.Progress)) (*api.PinResult, error) {
	return s.n.pin(ctx, req.Root, "user", progress)
}

func (s service) Unpin(_ context.Context, req api.PinRequest) (*api.UnpinResult, error) {
	return unpin(s.n.Index, req.Root)
}

func unpin(idx *content.Index, root cid.Cid) (*api.UnpinResult, error) {
	had, err := idx.Unpin(root)
	if err != nil {
		return nil, err
	}
	return &api.UnpinResult{Root: root, Unpinned: had}, nil
}

func (s service) Pins(context.Context) ([]content.Pin, error) { return pins(s.n.Index) }

func pins(idx *content.Index) ([]content.Pin, error) {
	out, err := idx.Pins()
	if out == nil {
		out = []content.Pin{}
	}
	return out, err
}

func (s service) GC(ctx context.Context, req api.GCRequest) (*api.GCReport, error) {
	return s.n.gc(ctx, req.DryRun)
}

// gcGone lists the roots gc took out of the index.
func gcGone(idx *content.Index, rep *api.GCReport) []cid.Cid {
	var gone []cid.Cid
	for _, it := range rep.Items {
		if _, err := idx.Root(it.Root); err != nil && !slices.Contains(gone, it.Root) {
			gone = append(gone, it.Root)
		}
	}
	return gone
}

func (s service) Follow(_ context.Context, req api.FollowRequest) (*api.FollowInfo, error) {
	key, err := follow(s.n.Home, s.n.Index, req)
	if err != nil {
		return nil, err
	}
	if s.n.follower != nil {
		if err := s.n.follower.Follow(key); err != nil {
			return nil, err
		}
	}
	return followInfo(s.n.Home, s.n.Index, key)
}

// follow records a followed publisher, named by key ID or petname.
func follow(h home.Home, idx *content.Index, req api.FollowRequest) (string, error) {
	key, err := h.ResolvePublisher(req.Publisher)
	if err != nil {
		return "", err
	}
	if err := idx.PutFollow(content.Follow{Key: key, Name: petnameOf(h, key), Time: time.Now().UTC()}); err != nil {
		return "", err
	}
	return key, nil
}

func (s service) Unfollow(_ context.Context, req api.FollowRequest) (*api.FollowInfo, error) {
	key, err := unfollow(s.n.Home, s.n.Index, req)
	if err != nil {
		return nil, err
	}
	if s.n.follower != nil {
		s.n.follower.Unfollow(key)
	}
	return &api.FollowInfo{Key: key, Names: []api.FollowedName{}}, nil
}

func unfollow(h home.Home, idx *content.Index, req api.FollowRequest) (string, error) {
	key, err := h.ResolvePublisher(req.Publisher)
	if err != nil {
		return "", err
	}
	had, err := idx.Unfollow(key)
	if err != nil {
		return "", err
	}
	if !had {
		return "", fmt.Errorf("%w: %s is not followed", content.ErrNotFound, content.Quote(req.Publisher))
	}
	return key, nil
}

func (s service) Follows(context.Context) ([]api.FollowInfo, error) {
	return follows(s.n.Home, s.n.Index)
}

func follows(h home.Home, idx *content.Index) ([]api.FollowInfo, error) {
	fs, err := idx.Follows()
	if err != nil {
		return nil, err
	}
	out := []api.FollowInfo{}
	for _, f := range fs {
		fi, err := followInfo(h, idx, f.Key)
		if err != nil {
			return nil, err
		}
		fi.Name, fi.Time = f.Name, f.Time
		out = append(out, *fi)
	}
	return out, nil
}

// followInfo describes a followed publisher and the names it signed.
func followInfo(h home.Home, idx *content.Index, key string) (*api.FollowInfo, error) {
	fi := &api.FollowInfo{Key: key, Name: petnameOf(h, key), Names: []api.FollowedName{}}
	if fs, _ := idx.Follows(); fs != nil {
		if i := slices.IndexFunc(fs, func(f content.Follow) bool { return f.Key == key }); i >= 0 {
			fi.Time = fs[i].Time
		}
	}
	for _, s := range idx.Records() {
		if s.Key != key {
			continue
		}
		_, err := idx.Root(s.Root.Cid)
		fi.Names = append(fi.Names, api.FollowedName{Name: s.Name, Seq: s.Seq, Root: s.Root.Cid, Held: err == nil})
	}
	slices.SortFunc(fi.Names, func(a, b api.FollowedName) int { return strings.Compare(a.Name, b.Name) })
	return fi, nil
}

// petnameOf is the trusted petname of a key ID, or "".
func petnameOf(h home.Home, key string) string {
	if h.Dir == "" {
		return ""
	}
	for pet, id := range h.Trusted() {
		if id == key {
			return pet
		}
	}
	return ""
}

func isOverBudget(err error) bool { return errors.Is(err, mirror.ErrOverBudget) }
