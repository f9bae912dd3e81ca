package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/hf"
	"github.com/shoal-p2p/shoal/home"
)

// models is the node as the Hub-compatible endpoint (hf.Models) and the
// gateway (gateway.Store) see it: names resolved to roots, manifests, and
// file bytes, each chunk verified. A model not held is fetched into the
// store and pinned ("served") before its bytes are served.
type models struct{ n *Node }

// resolveForHTTP bounds finding a name's record for an HTTP client.
const resolveForHTTP = 8 * time.Second

// servedPin is the reason of the pins a model served over HTTP takes.
const servedPin = "served"

// Resolve maps "publisher/name" (a petname or key ID) and "main" to the
// newest record's root; a root CID as revision is taken when a record of
// the publisher kept here names it so.
func (m models) Resolve(ctx context.Context, repo, rev string) (cid.Cid, error) {
	pub, name, ok := home.SplitName(repo)
	if !ok || content.CheckName(name) != nil {
		return cid.Undef, fmt.Errorf("%w: %s", hf.ErrRepoNotFound, content.Quote(repo))
	}
	keyID, err := m.n.Home.ResolvePublisher(pub)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %w", hf.ErrRepoNotFound, err)
	}
	if rev != "main" && rev != "HEAD" {
		// A root as revision is one this publisher signed: a link to
		// alice/llama at some CID must not pass off another's model as
		// a version of hers.
		root, err := content.ParseCID(rev)
		if err != nil || content.CheckRoot(root) != nil {
			return cid.Undef, fmt.Errorf("%w: %s", hf.ErrRevisionNotFound, content.Quote(rev))
		}
		for _, s := range m.n.Index.RecordsFor(root) {
			if s.Key == keyID && s.Name == name {
				return root, nil
			}
		}
		return cid.Undef, fmt.Errorf("%w: no record of %s names %s as %s", hf.ErrRevisionNotFound, keyID, root, content.Quote(name))
	}
	// A client waits about 10 s for an answer: an unknown name is a 404
	// well before that, not a timeout.
	rctx, cancel := context.WithTimeout(ctx, resolveForHTTP)
	defer cancel()
	rec, err := m.n.resolveWaiting(rctx, keyID, name)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %w", hf.ErrRepoNotFound, err)
	}
	return rec.Root.Cid, nil
}

// Manifest is the index's manifest of root, or the one its holders
// serve, found within resolveForHTTP; nobody holding it is not found.
func (m models) Manifest(ctx context.Context, root cid.Cid) (*content.Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveForHTTP)
	defer cancel()
	man, err := m.n.fetcher.Manifest(ctx, root)
	if errors.Is(err, fetch.ErrNoProviders) || (errors.Is(err, context.DeadlineExceeded) && !errors.Is(ctx.Err(), context.Canceled)) {
		return nil, fmt.Errorf("%w: %w: no peer found holding %s", hf.ErrRevisionNotFound, content.ErrNotFound, root)
	}
	return man, err
}

// Block is a manifest block or chunk this node holds, verified.
func (m models) Block(_ context.Context, c cid.Cid) ([]byte, error) {
	if c.Type() == content.CodecDagCBOR {
		return m.n.Index.Block(c)
	}
	return m.n.Index.ReadChunk(c, make([]byte, content.MaxChunk))
}

// ReadFile writes bytes [off, off+n) of file i of root to w, chunk by
// chunk, each read from a held copy and verified (Index.ReadChunk); a root
// not held is fetched into the store first.
func (m models) ReadFile(ctx context.Context, root cid.Cid, i int, off, n int64, w io.Writer) error {
	if _, err := m.n.Index.Root(root); errors.Is(err, content.ErrNotFound) {
		if _, err := m.n.pin(ctx, root, servedPin, nil); err != nil {
			return err
		}
	}
	man, err := m.n.heldManifest(root)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(man.Files) || off < 0 || n < 0 || off+n > int64(man.Files[i].Size) {
		return fmt.Errorf("%w: bytes [%d, %d) of file %d", api.ErrBadRequest, off, off+n, i)
	}
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	buf := *bp
	var at int64
	for _, c := range man.FileChunks(i) {
		end := at + int64(c.Len)
		if end > off && at < off+n {
			data, err := m.n.Index.ReadChunk(c.CID.Cid, buf[:c.Len])
			if err != nil {
				return fmt.Errorf("chunk %s of %s: %w", c.CID.Cid, content.Quote(man.Files[i].Path), err)
			}
			lo, hi := max(off, at)-at, min(off+n, end)-at
			if _, err := w.Write(data[lo:hi]); err != nil {
				return err
			}
		}
		if end >= off+n {
			break
		}
		at = end
	}
	return ctx.Err()
}

// heldManifest is the index's manifest of a held root, decoded once for
// the many reads of a download (up to 64 kept).
func (n *Node) heldManifest(root cid.Cid) (*content.Manifest, error) {
	n.manMu.Lock()
	m := n.manifests[root]
	n.manMu.Unlock()
	if m != nil {
		return m, nil
	}
	m, _, err := n.Index.Manifest(root)
	if err != nil {
		return nil, err
	}
	n.manMu.Lock()
	defer n.manMu.Unlock()
	if n.manifests == nil || len(n.manifests) >= 64 {
		n.manifests = map[cid.Cid]*content.Manifest{}
	}
	n.manifests[root] = m
	return m, nil
}

// chunkBufs are ReadFile's chunk buffers: one a call, given back after.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, content.MaxChunk); return &b }}

// getHF fetches root into a Hugging Face cache repo folder: staged in
// repo/.shoal-incoming/COMMIT (resumable, on the same file system), every
// file hashed whole (its sha256 is its blob's name), then moved into
// blobs/, linked from snapshots/COMMIT/ and named by refs/main. Blobs
// already there whose bytes hash to their name are reused, not fetched.
// The snapshot is recorded as where the node holds the root.
func (n *Node) getHF(ctx context.Context, root cid.Cid, repo string, opt GetOptions) (*GetResult, *api.HFSnapshot, error) {
	commit := hf.Commit(root)
	if commit == "" {
		return nil, nil, fmt.Errorf("%w: %s", content.ErrNotRoot, root)
	}
	// The folders a cache repo has, from the start: a fetch interrupted
	// before its snapshot is made leaves a repo Hugging Face's tools
	// still read (with no snapshot yet), not one they call broken.
	for _, d := range []string{"blobs", "snapshots", "refs"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			return nil, nil, err
		}
	}
	stage, err := stageDir(repo, commit)
	if err != nil {
		return nil, nil, err
	}
	reused := map[string]string{} // manifest path → blob
	opt.WholeFile = true
	opt.Have = func(f content.File) bool {
		blob, ok := hf.Blob(repo, f.SHA256, int64(f.Size))
		if ok && sameSHA256(blob, f.SHA256) {
			reused[f.Path] = blob
			return true
		}
		return false
	}
	res, err := n.Get(ctx, root, stage, opt)
	if err != nil {
		return nil, nil, err
	}
	m := res.Manifest
	staged := make([]hf.StagedFile, len(m.Files))
	for i, f := range m.Files {
		abs := filepath.Join(stage, filepath.FromSlash(f.Path))
		if b, ok := reused[f.Path]; ok {
			abs = b
		}
		staged[i] = hf.StagedFile{Path: f.Path, Abs: abs, SHA256: f.SHA256}
	}
	if err := hf.WriteSnapshot(repo, commit, "main", staged); err != nil {
		return nil, nil, err
	}
	// Staged is not held: the snapshot is (a fetch of all of it recorded
	// the stage).
	if _, err := n.Index.Forget(root, stage); err != nil && !errors.Is(err, content.ErrNotFound) {
		return nil, nil, err
	}
	_ = os.RemoveAll(stage)
	_ = os.Remove(filepath.Dir(stage)) // when no other fetch stages there
	snap := filepath.Join(repo, "snapshots", commit)
	infos, err := n.recordSnapshot(m, snap, hfRepoID(repo))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot written, but recording it failed: %w", err)
	}
	res.Dir, res.Files, res.Size, res.Partial = snap, len(m.Files), m.Size(), false
	res.Pickle = content.PickleFiles(infos) // reused blobs too
	return res, &api.HFSnapshot{Repo: repo, Commit: commit, Snapshot: snap, Reused: len(reused)}, nil
}

// stageDir makes repo/.shoal-incoming/COMMIT, refusing anything on the
// way that is not a folder (a symlink out, planted by another user of a
// shared cache): nobody but the user chooses where a fetch writes.
func stageDir(repo, commit string) (string, error) {
	root, err := os.OpenRoot(repo)
	if err != nil {
		return "", err
	}
	defer root.Close()
	for _, rel := range []string{".shoal-incoming", filepath.Join(".shoal-incoming", commit)} {
		if err := root.Mkdir(rel, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		st, err := root.Lstat(rel)
		if err != nil {
			return "", err
		}
		if !st.IsDir() {
			return "", fmt.Errorf("%s is not a folder (a symlink?): refusing to stage a fetch through it; remove it",
				content.Escape(filepath.Join(repo, rel)))
		}
	}
	return filepath.Join(repo, ".shoal-incoming", commit), nil
}

// recordSnapshot records a snapshot folder (links into blobs/, every blob
// verified: fetched and hashed whole, or hashed when reused) as a place
// the node holds m's root.
func (n *Node) recordSnapshot(m *content.Manifest, snap, name string) ([]content.FileInfo, error) {
	blocks, err := m.Encode()
	if err != nil {
		return nil, err
	}
	infos := make([]content.FileInfo, len(m.Files))
	for i, f := range m.Files {
		p := filepath.Join(snap, filepath.FromSlash(f.Path))
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		infos[i] = content.FileInfo{Rel: f.Path, Path: p, Size: st.Size(), MtimeNs: st.ModTime().UnixNano(), SHA256: f.SHA256}
	}
	info := content.RootInfo{Name: name, Dir: snap, Size: m.Size(), Files: len(m.Files),
		Source: content.SourceFetched, Time: time.Now().UTC()}
	return infos, n.Index.Put(&content.Held{Info: info, Blocks: blocks, Files: infos, M: m})
}

// hfRepoID is the repo id a cache folder stands for: models--org--name
// is org/name (Hugging Face forbids "--" in ids, so the split is exact).
func hfRepoID(repo string) string {
	base := filepath.Base(repo)
	id, ok := strings.CutPrefix(base, "models--")
	if !ok {
		return base
	}
	return strings.Replace(id, "--", "/", 1)
}

// sameSHA256 reports whether the file at p hashes to sum.
func sameSHA256(p string, sum []byte) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return string(h.Sum(nil)) == string(sum)
}
