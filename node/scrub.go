package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
)

// Scrub re-hashes every place of the roots asked for (all held roots when
// none is named), chunk by chunk and whole, against their manifests. A
// file that no longer matches (bit rot, an edit, a deletion) is reported.
// In a place Shoal fetched into, the bad files are removed and fetched
// again from peers, verified; a place a user added is the user's, and is
// only marked damaged. A root with no intact place left is no longer
// announced nor offered as complete (threat 22).
func (n *Node) Scrub(ctx context.Context, req api.ScrubRequest, progress func(api.Progress)) (*api.ScrubReport, error) {
	roots := req.Roots
	if len(roots) == 0 {
		all, err := n.Index.Roots()
		if err != nil {
			return nil, err
		}
		for _, r := range all {
			roots = append(roots, r.Root)
		}
	}
	var total int64
	for _, r := range roots {
		ri, err := n.Index.Root(r)
		if err != nil {
			return nil, heldErr(r, err)
		}
		total += ri.Size * int64(len(ri.Places))
	}
	var done atomic.Int64
	tick := func(k int64) {
		if progress != nil {
			progress(api.Progress{Phase: "verifying", Done: done.Add(k), Total: total})
		}
	}
	rep := &api.ScrubReport{OK: true, Roots: []api.ScrubRoot{}}
	for _, r := range roots {
		sr, err := n.scrubRoot(ctx, r, tick)
		if err != nil {
			return nil, err
		}
		for _, p := range sr.Places {
			if len(p.Bad) > 0 && !p.Healed {
				rep.OK = false
			}
		}
		rep.Roots = append(rep.Roots, *sr)
	}
	return rep, nil
}

func heldErr(root cid.Cid, err error) error {
	return &notHeld{root: root, err: err}
}

type notHeld struct {
	root cid.Cid
	err  error
}

func (e *notHeld) Error() string {
	return e.root.String() + ": " + e.err.Error() + " (this node does not hold it)"
}
func (e *notHeld) Unwrap() error { return e.err }

func (n *Node) scrubRoot(ctx context.Context, root cid.Cid, tick func(int64)) (*api.ScrubRoot, error) {
	ri, err := n.Index.Root(root)
	if err != nil {
		return nil, heldErr(root, err)
	}
	m, err := loadManifest(n.Index, root)
	if err != nil {
		return nil, err
	}
	sr := &api.ScrubRoot{Root: root, Places: []api.ScrubPlace{}}
	for _, p := range ri.Places {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sp := api.ScrubPlace{Dir: p.Dir, Source: p.Source, Bad: []api.VerifyFile{}}
		files, _ := n.Index.PlaceFiles(root, p.Dir)
		var bad []content.FileInfo
		for i, fi := range files {
			if v := verifyFile(fi, m.FileChunks(i), tick); v != nil {
				sp.Bad = append(sp.Bad, api.VerifyFile{Path: fi.Rel, Status: v.status, Detail: v.detail})
				bad = append(bad, fi)
			}
		}
		if len(bad) > 0 && p.Source != content.SourceAdded {
			if err := n.heal(ctx, root, p, bad); err != nil {
				sp.Error = content.OneLine(err.Error())
			} else {
				sp.Healed = true
			}
		}
		sp.Damaged = len(bad) > 0 && !sp.Healed
		if sp.Damaged != p.Damaged {
			if err := n.Index.SetDamaged(root, p.Dir, sp.Damaged); err != nil {
				return nil, err
			}
		}
		if sp.Damaged {
			n.log.Warn("scrub: a copy no longer matches its model", "root", root, "dir", p.Dir, "bad", len(bad), "healed", false)
		}
		sr.Places = append(sr.Places, sp)
	}
	if ri, err = n.Index.Root(root); err == nil {
		sr.Servable = ri.Servable()
	}
	if n.ann != nil {
		if sr.Servable {
			n.ann.add(root) // announced again (its file keys may have changed)
		} else {
			n.ann.forget([]cid.Cid{root})
		}
	}
	return sr, nil
}

// heal removes the bad files of a place Shoal fetched into and fetches
// the root there again: the intact files are kept (the fetch takes what
// it can from this node's own copies), the removed ones come from peers,
// every chunk verified.
func (n *Node) heal(ctx context.Context, root cid.Cid, p content.Place, bad []content.FileInfo) error {
	for _, fi := range bad {
		rel, err := filepath.Rel(p.Dir, fi.Path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // never outside the place
		}
		if err := os.Remove(fi.Path); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	_, err := n.Get(ctx, root, p.Dir, GetOptions{Force: true, Stored: p.Source == content.SourceStored})
	return err
}

func (s service) Scrub(ctx context.Context, req api.ScrubRequest, progress func(api.Progress)) (*api.ScrubReport, error) {
	return s.n.Scrub(ctx, req, progress)
}

// scrubLoop scrubs everything every interval until the node closes.
func (n *Node) scrubLoop(interval time.Duration) {
	n.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
				rep, err := n.Scrub(n.ctx, api.ScrubRequest{}, nil)
				if err != nil {
					if n.ctx.Err() == nil {
						n.log.Warn("scrub", "err", err)
					}
					continue
				}
				n.log.Info("scrub done", "roots", len(rep.Roots), "ok", rep.OK)
			}
		}
	})
}
