package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
)

// Keeper decides what a node keeps: pins, gc and the disk budget.
type Keeper struct {
	Index *content.Index
	// Store is the folder the node fetches into for itself ("": none).
	Store string
	// Budget bounds the bytes in the store (0: no bound); a reload may
	// change it while the node runs.
	Budget atomic.Int64
	// Running lists the roots being fetched now: gc leaves them alone.
	Running func() []cid.Cid

	gc       sync.Mutex // one gc at a time
	mu       sync.Mutex
	reserved int64                     // bytes admitted to fetches into the store still running
	pinning  map[cid.Cid]chan struct{} // pins fetching now, closed when done
}

// Fetch fetches root into dir for the node's store; admit must be shown
// the manifest before any chunk moves.
type Fetch func(ctx context.Context, dir string, admit func(*content.Manifest) error) (*api.GetResult, error)

// StoreDir is the folder root is fetched into for the node itself.
func (k *Keeper) StoreDir(root cid.Cid) string { return filepath.Join(k.Store, root.String()) }

// Used is the bytes in the store: the roots held there, and what fetches
// that failed or were cancelled left behind (until gc deletes it).
func (k *Keeper) Used() int64 {
	roots, _ := k.Index.Roots()
	var used int64
	for _, r := range roots {
		for _, p := range r.Places {
			if p.Source == content.SourceStored {
				used += r.Size
			}
		}
	}
	for _, name := range k.strays(roots) {
		used += diskUsage(filepath.Join(k.Store, name))
	}
	return used
}

// strays lists the store's entries that no held place names and no pin
// is fetching into: what a failed or cancelled fetch left, or what someone
// else put there.
func (k *Keeper) strays(roots []content.RootInfo) []string {
	if k.Store == "" {
		return nil
	}
	ents, err := os.ReadDir(k.Store)
	if err != nil {
		return nil
	}
	named := map[string]bool{}
	for _, r := range roots {
		for _, p := range r.Places {
			if filepath.Dir(p.Dir) == filepath.Clean(k.Store) {
				named[filepath.Base(p.Dir)] = true
			}
		}
	}
	k.mu.Lock()
	for r := range k.pinning {
		named[r.String()] = true
	}
	k.mu.Unlock()
	if k.Running != nil {
		for _, r := range k.Running() {
			named[r.String()] = true
		}
	}
	var out []string
	for _, e := range ents {
		if !named[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out
}

// diskUsage sums the sizes of the regular files under path, following no
// symbolic link.
func diskUsage(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// admit reserves room in the store for m, or refuses with the numbers.
// The reservation is released by the returned function.
func (k *Keeper) admit(m *content.Manifest) (release func(), err error) {
	stored := k.Used() // without k.mu: it takes it
	k.mu.Lock()
	defer k.mu.Unlock()
	need := m.Size()
	if budget := k.Budget.Load(); budget > 0 {
		used := stored + k.reserved
		if used+need > budget {
			return nil, fmt.Errorf("%w: %s needs %s; the store holds %s of its %s budget (storage_max): free room with shoal gc (and shoal pin rm), or raise storage_max",
				ErrOverBudget, m.Root, content.HumanBytes(need), content.HumanBytes(used), content.HumanBytes(budget))
		}
	}
	k.reserved += need
	return func() {
		k.mu.Lock()
		k.reserved -= need
		k.mu.Unlock()
	}, nil
}

// Pin pins root for reason. A root not held is fetched into the store
// first, within the budget; the pin is taken before the fetch starts (so
// a gc meanwhile cannot collect what it fetched) and dropped again if the
// fetch fails. Pins of one root fetching at once wait for each other.
func (k *Keeper) Pin(ctx context.Context, root cid.Cid, reason string, fetch Fetch) (*api.PinResult, error) {
	for {
		// Not while a gc runs: it may be deleting a stray folder of this
		// root's from an earlier, failed fetch.
		k.gc.Lock()
		k.mu.Lock()
		wait, busy := k.pinning[root]
		if !busy {
			if k.pinning == nil {
				k.pinning = map[cid.Cid]chan struct{}{}
			}
			k.pinning[root] = make(chan struct{})
		}
		k.mu.Unlock()
		k.gc.Unlock()
		if !busy {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() {
		k.mu.Lock()
		close(k.pinning[root])
		delete(k.pinning, root)
		k.mu.Unlock()
	}()
	res := &api.PinResult{}
	if ri, err := k.Index.Root(root); err == nil && ri.Pin != nil {
		res.Already = true
	}
	if err := k.Index.PinRoot(root, reason); err != nil {
		return nil, err
	}
	if _, err := k.Index.Root(root); errors.Is(err, content.ErrNotFound) {
		if k.Store == "" {
			return nil, k.undo(root, res, fmt.Errorf("%w: %s is not held here", ErrNoStore, root))
		}
		if err := os.MkdirAll(k.Store, 0o700); err != nil {
			return nil, k.undo(root, res, err)
		}
		var release func()
		defer func() {
			if release != nil {
				release()
			}
		}()
		got, err := fetch(ctx, k.StoreDir(root), func(m *content.Manifest) (err error) {
			release, err = k.admit(m)
			return err
		})
		if err != nil {
			return nil, k.undo(root, res, err)
		}
		res.Fetched = got
	}
	pins, err := k.Index.Pins()
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(pins, func(p content.Pin) bool { return p.Root == root }); i >= 0 {
		res.Pin = pins[i]
	}
	return res, nil
}

// undo drops a pin Pin took when its fetch failed.
func (k *Keeper) undo(root cid.Cid, res *api.PinResult, err error) error {
	if !res.Already {
		_, _ = k.Index.Unpin(root)
	}
	return err
}

// GC collects every held root that is neither pinned nor being fetched:
// its places in the store are deleted (except files a kept root also
// uses), its other places only forgotten. Places whose folder is gone
// are forgotten whatever the root.
func (k *Keeper) GC(ctx context.Context, dryRun bool) (*api.GCReport, error) {
	k.gc.Lock()
	defer k.gc.Unlock()
	roots, err := k.Index.Roots()
	if err != nil {
		return nil, err
	}
	running := map[cid.Cid]bool{}
	if k.Running != nil {
		for _, r := range k.Running() {
			running[r] = true
		}
	}
	k.mu.Lock()
	for r := range k.pinning {
		running[r] = true
	}
	k.mu.Unlock()
	rep := &api.GCReport{DryRun: dryRun, Items: []api.GCItem{}, Budget: k.Budget.Load()}
	keep := map[string]bool{} // paths a kept root uses
	var collect []content.RootInfo
	for _, r := range roots {
		if r.Pin == nil && !running[r.Root] {
			collect = append(collect, r)
			continue
		}
		// A kept root's places whose folder is gone: forgotten.
		for _, p := range r.Places {
			if _, err := os.Stat(p.Dir); errors.Is(err, fs.ErrNotExist) && !running[r.Root] {
				rep.Items = append(rep.Items, api.GCItem{Root: r.Root, Dir: p.Dir, Source: p.Source, Action: "forgotten"})
				if !dryRun {
					if _, err := k.Index.Forget(r.Root, p.Dir); err != nil && !errors.Is(err, content.ErrNotFound) {
						return nil, err
					}
				}
			}
		}
		rep.Kept++
		for _, p := range r.Places {
			files, _ := k.Index.PlaceFiles(r.Root, p.Dir)
			for _, f := range files {
				keep[f.Path] = true
			}
		}
	}
	var store *os.Root
	if k.Store != "" {
		if store, err = os.OpenRoot(k.Store); err == nil {
			defer store.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	for _, r := range collect {
		for _, p := range r.Places {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			item := api.GCItem{Root: r.Root, Dir: p.Dir, Source: p.Source, Action: "forgotten"}
			if p.Source == content.SourceStored && store != nil && k.inStore(p.Dir) {
				item.Action = "deleted"
				files, _ := k.Index.PlaceFiles(r.Root, p.Dir)
				for _, f := range files {
					if !keep[f.Path] {
						item.Bytes += removeIn(store, k.Store, f.Path, dryRun)
					}
				}
				if !dryRun {
					removeEmptyDirs(store, k.Store, p.Dir)
				}
			}
			if !dryRun {
				if _, err := k.Index.Forget(r.Root, p.Dir); err != nil && !errors.Is(err, content.ErrNotFound) {
					return nil, err
				}
			}
			rep.Freed += item.Bytes
			rep.Items = append(rep.Items, item)
		}
	}
	// What failed or cancelled fetches left in the store, and anything
	// else no held root names there.
	if store != nil {
		remaining, _ := k.Index.Roots()
		if dryRun {
			remaining = roots
		}
		for _, name := range k.strays(remaining) {
			item := api.GCItem{Dir: filepath.Join(k.Store, name), Source: content.SourceStored, Action: "deleted",
				Bytes: diskUsage(filepath.Join(k.Store, name))}
			if c, err := cid.Decode(name); err == nil {
				item.Root = c
			}
			if !dryRun {
				if err := store.RemoveAll(name); err != nil {
					return nil, err
				}
			}
			rep.Freed += item.Bytes
			rep.Items = append(rep.Items, item)
		}
	}
	rep.Used = k.Used()
	return rep, nil
}

// inStore reports whether dir lies inside the store (never the store
// itself).
func (k *Keeper) inStore(dir string) bool {
	if k.Store == "" {
		return false
	}
	rel, err := filepath.Rel(k.Store, dir)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// removeIn deletes the regular file at path inside the store through
// store (an os.Root: a symbolic link on the way that leads out of the
// store is refused, never followed) and reports its size; a dry run only
// measures it.
func removeIn(store *os.Root, storeDir, path string, dryRun bool) int64 {
	rel, err := filepath.Rel(storeDir, path)
	if err != nil {
		return 0
	}
	st, err := store.Lstat(rel)
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	if !dryRun && store.Remove(rel) != nil {
		return 0
	}
	return st.Size()
}

// removeEmptyDirs removes dir and the folders under it that hold nothing
// (deepest first), through store; a folder with anything left in it
// stays.
func removeEmptyDirs(store *os.Root, storeDir, dir string) {
	rel, err := filepath.Rel(storeDir, dir)
	if err != nil {
		return
	}
	var dirs []string
	_ = fs.WalkDir(store.FS(), filepath.ToSlash(rel), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = store.Remove(filepath.FromSlash(dirs[i])) // fails, harmlessly, on a folder not empty
	}
}
