package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// Fetch errors.
var (
	// ErrNoProviders reports a root nobody was found to provide in time.
	ErrNoProviders = errors.New("no providers found")
	// ErrNotEmpty reports an output folder that exists and is not empty.
	ErrNotEmpty = errors.New("output folder exists and is not empty (use --force to write into it)")
	// ErrIntegrity reports data that failed verification from every source.
	ErrIntegrity = errors.New("integrity check failed")
)

// Progress is a snapshot of a fetch.
type Progress struct {
	Phase string `json:"phase"` // "finding", "manifest", "fetching", "done"
	Done  int64  `json:"done"`  // bytes verified and written
	Total int64  `json:"total"` // bytes in the model
	Peers int    `json:"peers"` // sources sending now
	Files int    `json:"files"` // files in the model
}

// GetOptions tune a fetch.
type GetOptions struct {
	// Force writes into an existing non-empty folder, replacing files of
	// the same names.
	Force bool
	// Progress, if set, is called now and then with a snapshot.
	Progress func(Progress)
}

// GetResult describes a finished fetch.
type GetResult struct {
	Root     string            `json:"root"`
	Dir      string            `json:"dir"`
	Files    int               `json:"files"`
	Size     int64             `json:"size"`
	Elapsed  time.Duration     `json:"elapsed_ns"`
	Peers    int               `json:"peers"`     // peers that sent chunks
	Refetch  int               `json:"refetched"` // chunks fetched again after a failure
	Local    int64             `json:"local"`     // bytes copied from what this node already held
	Pickle   []string          `json:"pickle,omitempty"`
	Manifest *content.Manifest `json:"-"`
}

// source is somewhere chunks come from: this node's own index or a peer.
type source struct {
	name    string
	get     func(ctx context.Context, c cid.Cid, max int) ([]byte, error)
	close   func()
	workers int
	peer    peer.ID
	sent    atomic.Int64
}

func (n *Node) localSource() *source {
	return &source{
		name:    "local",
		workers: 2,
		get: func(_ context.Context, c cid.Cid, max int) ([]byte, error) {
			if c.Type() == content.CodecDagCBOR {
				return n.Index.Block(c)
			}
			return n.Index.ReadChunk(c, make([]byte, max))
		},
		close: func() {},
	}
}

func (n *Node) peerSource(ctx context.Context, p peer.AddrInfo) (*source, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.Host.Connect(cctx, p); err != nil {
		return nil, err
	}
	s, err := n.Host.NewStream(cctx, p.ID, protocol.ID)
	if err != nil {
		return nil, err
	}
	cl := protocol.NewClient(s)
	rt := time.Duration(n.cfg.RequestTimeout)
	return &source{
		name:    p.ID.String(),
		peer:    p.ID,
		workers: protocol.MaxInFlight / 2,
		get: func(ctx context.Context, c cid.Cid, max int) ([]byte, error) {
			rctx, cancel := context.WithTimeout(ctx, rt)
			defer cancel()
			return cl.Get(rctx, c, max)
		},
		close: func() { cl.Close() },
	}, nil
}

// findSources sends sources for root on the returned channel: this node
// first if it holds the root, then each provider found on the DHT that
// accepts a stream. The channel closes when the search ends.
func (n *Node) findSources(ctx context.Context, root cid.Cid) <-chan *source {
	out := make(chan *source)
	go func() {
		defer close(out)
		if _, err := n.Index.Block(root); err == nil {
			select {
			case out <- n.localSource():
			case <-ctx.Done():
				return
			}
		}
		fctx, cancel := context.WithTimeout(ctx, time.Duration(n.cfg.FindTimeout))
		defer cancel()
		var wg sync.WaitGroup
		defer wg.Wait()
		for p := range n.DHT.FindProvidersAsync(fctx, root, 0) {
			if p.ID == n.Host.ID() {
				continue
			}
			wg.Go(func() {
				s, err := n.peerSource(ctx, p)
				if err != nil {
					n.log.Debug("provider unreachable", "peer", p.ID, "err", err)
					return
				}
				select {
				case out <- s:
				case <-ctx.Done():
					s.close()
				}
			})
		}
	}()
	return out
}

// CheckOutputDir refuses an existing non-empty folder unless force.
func CheckOutputDir(dir string, force bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 && !force {
		return fmt.Errorf("%s: %w", dir, ErrNotEmpty)
	}
	return nil
}

// Get fetches the model root into dir: it finds sources, fetches and checks
// the whole manifest before writing anything, then fetches every chunk from
// every source, verifying each before it is written, writes each file under
// a temporary name and renames it into place only when the whole file's
// sha256 matches, and records the result in the index so it is served.
func (n *Node) Get(ctx context.Context, root cid.Cid, dir string, opt GetOptions) (*GetResult, error) {
	start := time.Now()
	if err := content.CheckCID(root); err != nil {
		return nil, err
	}
	if root.Type() != content.CodecDagCBOR {
		return nil, fmt.Errorf("%s is a chunk, not a model root (want a dag-cbor CID)", root)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckOutputDir(dir, opt.Force); err != nil {
		return nil, err
	}
	report := func(p Progress) {
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}
	report(Progress{Phase: "finding"})
	searchCtx, stopSearch := context.WithCancel(ctx)
	defer stopSearch()
	found := n.findSources(searchCtx, root)

	// Manifest: from the first source that serves all of it.
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			s.close()
		}
	}()
	var m *content.Manifest
	var blocks []content.Block
	var lastErr error
	for m == nil {
		s, ok := <-found
		if !ok {
			if lastErr != nil {
				return nil, fmt.Errorf("manifest of %s: %w", root, lastErr)
			}
			return nil, fmt.Errorf("%w for %s", ErrNoProviders, root)
		}
		srcs = append(srcs, s)
		report(Progress{Phase: "manifest", Peers: len(srcs)})
		m, blocks, lastErr = fetchManifest(ctx, s, root)
		if lastErr != nil && (errors.Is(lastErr, content.ErrBadPath) || errors.Is(lastErr, content.ErrBadManifest)) {
			// The root CID covers the manifest: a bad one is bad
			// everywhere, and nothing has been written.
			return nil, fmt.Errorf("refusing manifest of %s: %w", root, lastErr)
		}
	}

	f := &fetch{n: n, m: m, dir: dir, report: report, start: start}
	if err := f.prepare(); err != nil {
		f.abort()
		return nil, err
	}
	res, err := f.run(ctx, srcs, found, stopSearch)
	if err != nil {
		f.abort()
		return nil, err
	}
	info := content.RootInfo{Name: filepath.Base(dir), Dir: dir, Size: m.Size(), Files: len(m.Files), Source: "fetched", Time: time.Now().UTC()}
	if err := n.Index.Put(&content.Held{Info: info, Blocks: blocks, Files: f.infos, M: m}); err != nil {
		return nil, fmt.Errorf("files written, but recording them failed: %w", err)
	}
	res.Root, res.Dir, res.Manifest = root.String(), dir, m
	res.Elapsed = time.Since(start)
	for _, fl := range m.Files {
		if content.IsPickleName(fl.Path) {
			res.Pickle = append(res.Pickle, fl.Path)
		}
	}
	report(Progress{Phase: "done", Done: res.Size, Total: res.Size, Files: len(m.Files)})
	return res, nil
}

// fetchManifest fetches, verifies and decodes every block of a manifest.
func fetchManifest(ctx context.Context, s *source, root cid.Cid) (*content.Manifest, []content.Block, error) {
	get := func(c cid.Cid) ([]byte, error) {
		data, err := s.get(ctx, c, content.MaxBlock)
		if err != nil {
			return nil, err
		}
		if err := content.VerifyBlock(c, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	data, err := get(root)
	if err != nil {
		return nil, nil, err
	}
	blocks := []content.Block{{CID: root, Data: data}}
	r, err := content.DecodeRoot(data)
	if err != nil {
		return nil, nil, err
	}
	var files []content.File
	for i, l := range r.Files {
		data, err := get(l.Cid)
		if err != nil {
			return nil, nil, err
		}
		fs, err := content.DecodeFileList(r, i, data)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
		blocks = append(blocks, content.Block{CID: l.Cid, Data: data})
	}
	var chunks []content.ChunkRef
	for i, l := range r.Chunks {
		data, err := get(l.Cid)
		if err != nil {
			return nil, nil, err
		}
		cs, err := content.DecodeChunkList(r, i, data)
		if err != nil {
			return nil, nil, err
		}
		chunks = append(chunks, cs...)
		blocks = append(blocks, content.Block{CID: l.Cid, Data: data})
	}
	m, err := content.NewManifest(root, files, chunks)
	if err != nil {
		return nil, nil, err
	}
	return m, blocks, nil
}

// fetch is one Get's state once the manifest is known.
type fetch struct {
	n      *Node
	m      *content.Manifest
	dir    string
	report func(Progress)
	start  time.Time

	root  *os.Root
	files []*outFile
	infos []content.FileInfo

	done    atomic.Int64
	local   atomic.Int64
	refetch atomic.Int64
}

// outFile is a file being written: its temporary file and the sha256 of
// its written prefix, which grows as chunks land in order.
type outFile struct {
	idx      int
	rel, tmp string
	f        *os.File
	size     int64
	chunkEnd []int64 // end offset of each chunk

	mu       sync.Mutex
	have     []bool
	frontier int // chunks [0, frontier) are written and hashed
	h        hash.Hash
	buf      []byte // for reading back chunks that landed out of order
	done     bool   // renamed into place
}

// prepare creates the folder and a temporary file of full size for each
// file, through os.Root so that nothing is created outside dir.
func (f *fetch) prepare() error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return err
	}
	f.root = root
	for i, fl := range f.m.Files {
		rel := filepath.FromSlash(fl.Path)
		if d := path.Dir(fl.Path); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return fmt.Errorf("%s: %w", content.Escape(fl.Path), err)
			}
		}
		tmp := rel + content.PartialExt
		fh, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", content.Escape(fl.Path), err)
		}
		of := &outFile{idx: i, rel: rel, tmp: tmp, f: fh, size: int64(fl.Size), h: sha256.New()}
		f.files = append(f.files, of)
		if err := fh.Truncate(int64(fl.Size)); err != nil {
			return fmt.Errorf("%s: %w", content.Escape(fl.Path), err)
		}
		var end int64
		for _, c := range f.m.FileChunks(i) {
			end += int64(c.Len)
			of.chunkEnd = append(of.chunkEnd, end)
		}
		of.have = make([]bool, len(of.chunkEnd))
	}
	return nil
}

// abort removes temporary files.
func (f *fetch) abort() {
	for _, of := range f.files {
		if of.f != nil {
			of.f.Close()
		}
		_ = f.root.Remove(of.tmp)
	}
	if f.root != nil {
		f.root.Close()
	}
}

// target is one place a chunk is written.
type target struct {
	file  *outFile
	chunk int // index within the file
	off   int64
}

// job is one distinct chunk to fetch and every place it goes.
type job struct {
	cid     cid.Cid
	len     int
	targets []target
	failed  map[*source]bool
}

func (f *fetch) jobs() []*job {
	byCID := map[cid.Cid]*job{}
	var out []*job
	for i, of := range f.files {
		var off int64
		for k, c := range f.m.FileChunks(i) {
			j := byCID[c.CID.Cid]
			if j == nil {
				j = &job{cid: c.CID.Cid, len: int(c.Len)}
				byCID[c.CID.Cid] = j
				out = append(out, j)
			}
			j.targets = append(j.targets, target{file: of, chunk: k, off: off})
			off += int64(c.Len)
		}
	}
	return out
}

// run fetches every chunk and finishes every file. stopSearch ends the
// provider search that feeds found.
func (f *fetch) run(ctx context.Context, srcs []*source, found <-chan *source, stopSearch func()) (*GetResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := f.m.Size()
	// Files without chunks are complete already.
	for _, of := range f.files {
		if len(of.have) == 0 {
			if err := f.finish(of); err != nil {
				return nil, err
			}
		}
	}
	s := newScheduler(f.jobs())
	defer s.closeSources()
	var workers sync.WaitGroup
	start := func(src *source) {
		if !s.addSource(src) {
			return
		}
		for range src.workers {
			workers.Go(func() {
				if err := f.work(ctx, s, src); err != nil {
					cancel(err)
				}
			})
		}
	}
	for _, src := range srcs {
		start(src)
	}
	// Keep adding sources as the search finds them.
	searching := make(chan struct{})
	go func() {
		defer close(searching)
		for src := range found {
			start(src)
		}
		s.searchDone()
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for loop := true; loop; {
		select {
		case <-s.done:
			loop = false
		case <-tick.C:
			f.report(Progress{Phase: "fetching", Done: f.done.Load(), Total: total, Peers: s.active(), Files: len(f.files)})
		case <-ctx.Done():
			loop = false
		}
	}
	err := s.err()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		cancel(err)
	}
	stopSearch()
	<-searching
	workers.Wait()
	if err != nil {
		return nil, err
	}
	for _, of := range f.files {
		if !of.done {
			return nil, fmt.Errorf("%s: not complete after every chunk arrived", content.Escape(of.rel))
		}
	}
	if err := syncTree(f.dir, f.m); err != nil {
		return nil, err
	}
	f.infos = make([]content.FileInfo, len(f.files))
	for i, of := range f.files {
		abs := filepath.Join(f.dir, of.rel)
		st, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		f.infos[i] = content.FileInfo{Rel: f.m.Files[i].Path, Path: abs, Size: st.Size(), MtimeNs: st.ModTime().UnixNano(), SHA256: f.m.Files[i].SHA256}
	}
	peers := 0
	for _, src := range s.all {
		if src.peer != "" && src.sent.Load() > 0 {
			peers++
		}
	}
	return &GetResult{Files: len(f.files), Size: total, Peers: peers, Refetch: int(f.refetch.Load()), Local: f.local.Load()}, nil
}

// work is one worker of a source: take a job, fetch, verify, write.
func (f *fetch) work(ctx context.Context, s *scheduler, src *source) error {
	for {
		j, wait := s.take(src)
		if j == nil {
			if wait == nil {
				return nil
			}
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		data, err := src.get(ctx, j.cid, j.len)
		if err == nil && len(data) != j.len {
			err = fmt.Errorf("%w: chunk %s is %d bytes, manifest says %d", content.ErrHashMismatch, j.cid, len(data), j.len)
		}
		if err == nil {
			err = content.VerifyBlock(j.cid, data)
		}
		if err != nil {
			protocol.Recycle(data)
			if ctx.Err() != nil {
				s.putBack(j)
				return nil
			}
			bad := errors.Is(err, content.ErrHashMismatch)
			if bad {
				f.n.log.Warn("peer sent a bad chunk; dropping it", "peer", src.name, "cid", j.cid)
			}
			f.refetch.Add(1)
			// A chunk the source lacks is asked of others; a source that
			// lied or whose stream broke is dropped from this fetch.
			drop := bad || !(errors.Is(err, protocol.ErrNotFound) || errors.Is(err, protocol.ErrUnavailable) ||
				errors.Is(err, content.ErrNotFound) || errors.Is(err, content.ErrChanged))
			if ferr := s.fail(j, src, err, drop); ferr != nil {
				return ferr
			}
			if drop {
				return nil
			}
			continue
		}
		for _, t := range j.targets {
			if _, err := t.file.f.WriteAt(data, t.off); err != nil {
				return fmt.Errorf("writing %s: %w", content.Escape(t.file.rel), err)
			}
		}
		for _, t := range j.targets {
			whole, err := t.file.written(t.chunk, data)
			if err == nil && whole {
				err = f.finish(t.file)
			}
			if err != nil {
				return err
			}
		}
		protocol.Recycle(data)
		n := int64(j.len * len(j.targets))
		f.done.Add(n)
		src.sent.Add(n)
		if src.peer == "" {
			f.local.Add(n)
		}
		s.complete(j)
	}
}

// written records chunk k as written. When it extends the contiguous
// written prefix, it is hashed from memory, and any chunks after it that
// had landed out of order are read back and hashed. It reports whether the
// whole file is now hashed.
func (of *outFile) written(k int, data []byte) (bool, error) {
	of.mu.Lock()
	defer of.mu.Unlock()
	of.have[k] = true
	if k != of.frontier {
		return false, nil
	}
	of.h.Write(data)
	of.frontier++
	for of.frontier < len(of.have) && of.have[of.frontier] {
		start := of.chunkEnd[of.frontier-1]
		n := of.chunkEnd[of.frontier] - start
		if of.buf == nil {
			of.buf = make([]byte, content.MaxChunk)
		}
		if _, err := of.f.ReadAt(of.buf[:n], start); err != nil {
			return false, fmt.Errorf("reading back %s: %w", content.Escape(of.rel), err)
		}
		of.h.Write(of.buf[:n])
		of.frontier++
	}
	if of.frontier < len(of.have) {
		return false, nil
	}
	of.buf = nil
	return true, nil
}

// finish checks a whole file's sha256, syncs it and renames it into place.
func (f *fetch) finish(of *outFile) error {
	if sum := of.h.Sum(nil); string(sum) != string(f.m.Files[of.idx].SHA256) {
		return fmt.Errorf("%w: %s: whole-file sha256 does not match the manifest", ErrIntegrity, content.Escape(of.rel))
	}
	if err := of.f.Sync(); err != nil {
		return err
	}
	traceDurable("sync", of.tmp)
	if err := of.f.Close(); err != nil {
		return err
	}
	of.f = nil
	if err := f.root.Rename(of.tmp, of.rel); err != nil {
		return err
	}
	traceDurable("rename", of.rel)
	of.done = true
	return nil
}

// durableTrace, when set (by tests), is told of each step that makes a
// fetched file durable, in order.
var durableTrace func(op, path string)

func traceDurable(op, path string) {
	if durableTrace != nil {
		durableTrace(op, path)
	}
}

// syncTree fsyncs every folder that received a file or a new folder, and
// the parent of dir, so the renames are durable before success is reported.
func syncTree(dir string, m *content.Manifest) error {
	seen := map[string]bool{}
	var dirs []string
	for _, fl := range m.Files {
		for d := path.Dir(fl.Path); ; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
			if d == "." {
				break
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Join(dir, filepath.FromSlash(dirs[i]))); err != nil {
			return err
		}
		traceDurable("syncdir", filepath.FromSlash(dirs[i]))
	}
	return syncDir(filepath.Dir(dir))
}
