package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/internal/fsx"
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
			return nil, notHeldErr(r, err)
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

func (n *Node) scrubRoot(ctx context.Context, root cid.Cid, tick func(int64)) (*api.ScrubRoot, error) {
	ri, err := n.Index.Root(root)
	if err != nil {
		return nil, notHeldErr(root, err)
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
			v := verifyFile(fi, m.FileChunks(i), tick)
			if v != nil && v.status == "changed" {
				// Every byte matches; only its time moved (touched, or
				// copied back): record it as it is, and serve it again.
				if st, err := os.Stat(fi.Path); err == nil && st.Size() == fi.Size &&
					n.Index.Rerecord(root, p.Dir, uint32(i), st.Size(), st.ModTime().UnixNano()) == nil {
					continue
				}
			}
			if v != nil {
				sp.Bad = append(sp.Bad, api.VerifyFile{Path: fi.Rel, Status: v.status, Detail: v.detail})
				bad = append(bad, fi)
			}
		}
		if len(bad) > 0 && p.Source != content.SourceAdded {
			if err := n.heal(ctx, root, p, bad); err != nil {
				sp.Error = content.OneLine(err.Error())
			} else {
				sp.Healed = true
				if n.ann != nil {
					n.checkFileKeys(root) // the healed files' keys, once hashed
				}
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

// heal mends the bad files of a place Shoal fetched into without
// touching anything there until the good bytes are in hand: it fetches the
// root into a hidden folder inside the place (the intact chunks come from
// this node's own copies, each verified as it is read; the rest from
// peers), then moves just the bad files over theirs and records their new
// size and time. When the fetch fails (no peer has the model, say), the
// place is left exactly as it was.
func (n *Node) heal(ctx context.Context, root cid.Cid, p content.Place, bad []content.FileInfo) error {
	// Only into the very folder Shoal wrote: not one moved there since,
	// nor a link to elsewhere (that would write over someone's files).
	if !p.SameDir() {
		return fmt.Errorf("%s is not the folder Shoal fetched into (moved, replaced, or a link): not healed", content.Quote(p.Dir))
	}
	dir, err := os.OpenRoot(p.Dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	tmpName := fmt.Sprintf(".shoal-heal-%d", time.Now().UnixNano())
	tmp := filepath.Join(p.Dir, tmpName)
	defer func() {
		_ = dir.RemoveAll(tmpName)
		_, _ = n.Index.Forget(root, tmp)
	}()
	if _, err := n.fetcher.Get(ctx, root, tmp, fetch.Options{}); err != nil {
		return err
	}
	files, err := n.Index.PlaceFiles(root, p.Dir)
	if err != nil {
		return err
	}
	fixed := map[string]bool{}
	for _, fi := range bad {
		fixed[fi.Rel] = true
	}
	for i, fi := range files {
		if !fixed[fi.Rel] {
			continue
		}
		// Through the folder's os.Root: a link inside it that leads
		// out is refused, never followed.
		rel := filepath.FromSlash(fi.Rel)
		if err := dir.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
			return err
		}
		if err := dir.Rename(filepath.Join(tmpName, rel), rel); err != nil {
			return err
		}
		st, err := dir.Stat(rel)
		if err != nil {
			return err
		}
		files[i].Size, files[i].MtimeNs, files[i].Unchecked = st.Size(), st.ModTime().UnixNano(), true
		if err := fsx.SyncDir(filepath.Join(p.Dir, filepath.Dir(rel))); err != nil {
			return err
		}
	}
	m, blocks, err := n.Index.Manifest(root)
	if err != nil {
		return err
	}
	ri, err := n.Index.Root(root)
	if err != nil {
		return err
	}
	return n.Index.Put(&content.Held{Info: content.RootInfo{Name: p.Name, Dir: p.Dir, Size: ri.Size, Files: ri.Files,
		Source: p.Source, Time: p.Time}, Blocks: blocks, Files: files, M: m})
}

func (s service) Scrub(ctx context.Context, req api.ScrubRequest, progress func(api.Progress)) (*api.ScrubReport, error) {
	return s.n.Scrub(ctx, req, progress)
}

// scrubLoop scrubs everything every interval until the node closes.
func (n *Node) scrubLoop(interval time.Duration) {
	n.every(interval, func() {
		rep, err := n.Scrub(n.ctx, api.ScrubRequest{}, nil)
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Warn("scrub", "err", err)
			}
			return
		}
		n.log.Info("scrub done", "roots", len(rep.Roots), "ok", rep.OK)
	})
}
