package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

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
	// ErrStalled reports a fetch during which nothing arrived for too long.
	ErrStalled = errors.New("fetch stalled")
)

// Progress is a snapshot of a fetch.
type Progress struct {
	Phase string `json:"phase"` // "finding", "manifest", "resuming", "fetching", "done"
	Done  int64  `json:"done"`  // bytes verified and written
	Total int64  `json:"total"` // bytes in the model
	Peers int    `json:"peers"` // sources in use now
	Files int    `json:"files"` // files in the model
}

// GetOptions tune a fetch.
type GetOptions struct {
	// Force writes into an existing non-empty folder, replacing files of
	// the same names.
	Force bool
	// Progress, if set, is called now and then with a snapshot.
	Progress func(Progress)
	// Publisher, if set, is a key ID that must have signed a record
	// naming the root; otherwise the fetch stops before any chunk moves.
	Publisher string
	// Records are signed records to consider beside those peers hand
	// over (the one a name resolved to).
	Records [][]byte
}

// SourceStat is what one source delivered.
type SourceStat struct {
	Peer   string `json:"peer"` // peer ID, or "local"
	Bytes  int64  `json:"bytes"`
	Chunks int64  `json:"chunks"`
}

// GetResult describes a finished fetch.
type GetResult struct {
	Root    string        `json:"root"`
	Dir     string        `json:"dir"`
	Files   int           `json:"files"`
	Size    int64         `json:"size"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Peers   int           `json:"peers"`     // peers that sent chunks
	Chunks  int64         `json:"chunks"`    // chunks moved by this run
	Resumed int64         `json:"resumed"`   // chunks an earlier run had already fetched
	Refetch int           `json:"refetched"` // chunks asked again after a failure
	Local   int64         `json:"local"`     // bytes copied from what this node already held
	Sources []SourceStat  `json:"sources"`
	Signers []Signer      `json:"signers"` // valid records naming the root
	Pickle  []string      `json:"pickle,omitempty"`

	Manifest *content.Manifest `json:"-"`
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

// CheckGetDir accepts dir for a fetch of root: missing, empty, holding an
// unfinished fetch of the same root (resume), or anything with force.
func CheckGetDir(dir string, root cid.Cid, force bool) error {
	if r, ok := stateRoot(dir); ok && r.Equals(root) {
		return nil
	}
	return CheckOutputDir(dir, force)
}

// CheckGet checks, before any network traffic, that root can be fetched
// into dir. It reports done when this node already holds root in dir,
// every file unchanged: then Get has nothing to do.
func (n *Node) CheckGet(root cid.Cid, dir string, force bool) (done bool, err error) {
	if err := content.CheckCID(root); err != nil {
		return false, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	if n.heldAt(root, dir) {
		return true, nil
	}
	return false, CheckGetDir(dir, root, force)
}

// heldAt reports whether the index holds root in dir with every file
// unchanged since it was recorded.
func (n *Node) heldAt(root cid.Cid, dir string) bool {
	info, err := n.Index.Root(root)
	if err != nil || info.Dir != dir {
		return false
	}
	files, err := n.Index.Files(root)
	if err != nil {
		return false
	}
	for _, fi := range files {
		st, err := os.Stat(fi.Path)
		if err != nil || !fi.Unchanged(st) {
			return false
		}
	}
	return true
}

// Get fetches the model root into dir. It finds sources (this node, the
// providers of the root and of each file on the DHT, again and again while
// it runs), fetches and checks the whole manifest before writing anything,
// then fetches chunks from every source at once, verifying each before it
// is written. Each file is written under a temporary name and renamed into
// place once its whole-file sha256 matches. Progress is logged in
// dir/.shoal-fetch so that running Get again after an interruption (a
// kill -9 included) fetches only what is missing. While it runs, the node
// announces the root and serves the chunks it has; when it ends, the model
// is recorded in the index and served from dir.
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
	if n.heldAt(root, dir) {
		// Fetched here before and untouched since: nothing to do.
		m, err := loadManifest(n.Index, root)
		if err != nil {
			return nil, err
		}
		n.takeRecords(root, opt.Records)
		if err := n.checkSigned(root, opt.Publisher); err != nil {
			return nil, err
		}
		return &GetResult{Root: root.String(), Dir: dir, Files: len(m.Files), Size: m.Size(),
			Elapsed: time.Since(start), Resumed: int64(m.Distinct()), Manifest: m,
			Signers: signers(n.Home, n.Index, root)}, nil
	}
	if err := CheckGetDir(dir, root, opt.Force); err != nil {
		return nil, err
	}
	report := func(p Progress) {
		if opt.Progress != nil {
			opt.Progress(p)
		}
	}
	report(Progress{Phase: "finding"})
	dctx, stopDiscovery := context.WithCancel(ctx)
	defer stopDiscovery()
	disc := n.discover(dctx, root)

	// The manifest, from the first source that serves all of it.
	var early []*source
	var m *content.Manifest
	var blocks []content.Block
	var lastErr error
	for m == nil {
		var s *source
		select {
		case s = <-disc.out:
		case <-disc.first:
			select {
			case s = <-disc.out:
			default:
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s == nil {
			for _, e := range early {
				e.close()
			}
			if lastErr != nil {
				return nil, fmt.Errorf("manifest of %s: %w", root, lastErr)
			}
			return nil, fmt.Errorf("%w for %s", ErrNoProviders, root)
		}
		early = append(early, s)
		report(Progress{Phase: "manifest", Peers: len(early)})
		m, blocks, lastErr = fetchManifest(ctx, s, root)
		if lastErr != nil && (errors.Is(lastErr, content.ErrBadPath) || errors.Is(lastErr, content.ErrBadManifest)) {
			// The root CID covers the manifest: a bad one is bad
			// everywhere, and nothing has been written.
			for _, e := range early {
				e.close()
			}
			return nil, fmt.Errorf("refusing manifest of %s: %w", root, lastErr)
		}
	}
	disc.setKeys(m)

	// Who vouches for this root: the records the manifest's source holds,
	// those given, and those kept here. A required publisher is checked
	// before any chunk moves.
	n.takeRecords(root, opt.Records)
	for _, s := range early {
		if s.records != nil {
			if envs, err := s.records(ctx, root); err == nil {
				n.takeRecords(root, envs)
			}
		}
	}
	if err := n.checkSigned(root, opt.Publisher); err != nil {
		for _, e := range early {
			e.close()
		}
		return nil, err
	}

	f := newFetch(n, m, blocks, dir, report)
	f.disc = disc
	if err := f.prepare(ctx); err != nil {
		f.close()
		for _, e := range early {
			e.close()
		}
		return nil, err
	}
	n.store.register(f)
	defer n.store.unregister(f)
	res, err := f.run(ctx, early, disc, stopDiscovery)
	if err != nil {
		f.close()
		return nil, err
	}
	info := content.RootInfo{Name: filepath.Base(dir), Dir: dir, Size: m.Size(), Files: len(m.Files), Source: "fetched", Time: time.Now().UTC()}
	if err := n.Index.Put(&content.Held{Info: info, Blocks: blocks, Files: f.infos, M: m}); err != nil {
		f.close()
		return nil, fmt.Errorf("files written, but recording them failed: %w", err)
	}
	if err := f.complete(); err != nil {
		return nil, err
	}
	res.Root, res.Dir, res.Manifest = root.String(), dir, m
	res.Elapsed = time.Since(start)
	res.Signers = signers(n.Home, n.Index, root)
	for _, fl := range m.Files {
		if content.IsPickleName(fl.Path) {
			res.Pickle = append(res.Pickle, fl.Path)
		}
	}
	report(Progress{Phase: "done", Done: res.Size, Total: res.Size, Files: len(m.Files)})
	return res, nil
}

// checkSigned fails with ErrNotSigned unless publisher (if set) has a
// valid, live record naming root kept here.
func (n *Node) checkSigned(root cid.Cid, publisher string) error {
	if publisher == "" {
		return nil
	}
	for _, s := range n.Index.RecordsFor(root) {
		if s.Key == publisher && s.Live(time.Now()) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: no valid record of %s names %s; nothing was fetched", ErrNotSigned, publisher, root)
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
		// Blocks are kept; give back the receive buffer.
		out := append([]byte(nil), data...)
		protocol.Recycle(data)
		return out, nil
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
	files, err := collect(r.Files, get, func(i int, b []byte) ([]content.File, error) { return content.DecodeFileList(r, i, b) }, &blocks)
	if err != nil {
		return nil, nil, err
	}
	chunks, err := collect(r.Chunks, get, func(i int, b []byte) ([]content.ChunkRef, error) { return content.DecodeChunkList(r, i, b) }, &blocks)
	if err != nil {
		return nil, nil, err
	}
	m, err := content.NewManifest(root, files, chunks)
	if err != nil {
		return nil, nil, err
	}
	return m, blocks, nil
}

// collect fetches and decodes the list blocks behind links, in order,
// keeping each block.
func collect[T any](links []content.Link, get func(cid.Cid) ([]byte, error), decode func(int, []byte) ([]T, error), blocks *[]content.Block) ([]T, error) {
	var out []T
	for i, l := range links {
		data, err := get(l.Cid)
		if err != nil {
			return nil, err
		}
		items, err := decode(i, data)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		*blocks = append(*blocks, content.Block{CID: l.Cid, Data: data})
	}
	return out, nil
}

// fetch is one Get's state once the manifest is known.
type fetch struct {
	n      *Node
	m      *content.Manifest
	blocks map[cid.Cid][]byte
	dir    string
	report func(Progress)

	root  *os.Root
	disc  *discovery
	state *fetchState
	files []*outFile
	jobs  []*job
	byCID map[cid.Cid]*job
	infos []content.FileInfo

	mu    sync.Mutex
	sched *scheduler
	have  []byte // bit per chunk reference: verified and written
	dirty map[*outFile]bool

	done      atomic.Int64
	moved     atomic.Int64
	resumed   atomic.Int64
	refetch   atomic.Int64
	announced atomic.Bool
}

// outFile is a file being written: its temporary file and the sha256 of
// its written prefix, which grows as chunks land in order.
type outFile struct {
	idx      int
	rel, tmp string
	f        *os.File
	size     int64
	first    int     // index of its first chunk in the manifest's list
	chunkEnd []int64 // end offset of each chunk

	mu   sync.Mutex
	have []bool
	done bool // complete under its final name
	wake chan struct{}

	// Owned by the file's hasher.
	frontier int // chunks [0, frontier) are hashed
	h        hash.Hash
	buf      []byte
}

// target is one place a chunk is written.
type target struct {
	file  *outFile
	chunk int // index within the file
	off   int64
}

func newFetch(n *Node, m *content.Manifest, blocks []content.Block, dir string, report func(Progress)) *fetch {
	f := &fetch{n: n, m: m, dir: dir, report: report, blocks: map[cid.Cid][]byte{}, byCID: map[cid.Cid]*job{},
		have: make([]byte, (len(m.Chunks)+7)/8), dirty: map[*outFile]bool{}}
	for _, b := range blocks {
		f.blocks[b.CID] = b.Data
	}
	return f
}

// prepare creates the folder, the state log and a temporary file for each
// file (through os.Root, so nothing lands outside dir), and takes stock of
// what an earlier run left: files complete under their final names, and
// chunks in the temporary files, trusted when logged and re-hashed when
// not (so a kill -9 loses only the chunks that were in flight).
func (f *fetch) prepare(ctx context.Context) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return err
	}
	f.root = root
	_, resuming := stateRoot(f.dir)
	state, loggedChunks, loggedFiles, err := openState(f.dir, f.m.Root)
	if err != nil {
		return err
	}
	f.state = state
	for i, fl := range f.m.Files {
		rel := filepath.FromSlash(fl.Path)
		of := &outFile{idx: i, rel: rel, tmp: rel + content.PartialExt, size: int64(fl.Size), first: f.m.First[i],
			h: sha256.New(), wake: make(chan struct{}, 1)}
		var end int64
		for _, c := range f.m.FileChunks(i) {
			end += int64(c.Len)
			of.chunkEnd = append(of.chunkEnd, end)
		}
		of.have = make([]bool, len(of.chunkEnd))
		f.files = append(f.files, of)
		if d := path.Dir(fl.Path); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return fmt.Errorf("%s: %w", content.Quote(fl.Path), err)
			}
		}
		if resuming && f.finalIsDone(of, loggedFiles[i]) {
			_ = root.Remove(of.tmp) // a stale copy from an earlier run
			continue
		}
		fh, err := root.OpenFile(of.tmp, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", content.Quote(fl.Path), err)
		}
		of.f = fh
		if err := fh.Truncate(of.size); err != nil {
			return fmt.Errorf("%s: %w", content.Quote(fl.Path), err)
		}
	}
	f.buildJobs()
	if resuming {
		f.report(Progress{Phase: "resuming", Total: f.m.Size(), Files: len(f.files)})
		if err := f.scanPartial(ctx, loggedChunks); err != nil {
			return err
		}
	}
	return nil
}

// finalIsDone reports whether an earlier run completed file of: logged as
// done with the right size, or, unlogged, with the right sha256.
func (f *fetch) finalIsDone(of *outFile, logged bool) bool {
	st, err := f.root.Stat(of.rel)
	if err != nil || !st.Mode().IsRegular() || st.Size() != of.size {
		return false
	}
	if !logged {
		fh, err := f.root.Open(of.rel)
		if err != nil {
			return false
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil || string(h.Sum(nil)) != string(f.m.Files[of.idx].SHA256) {
			return false
		}
	}
	of.done = true
	of.frontier = len(of.have)
	for k := range of.have {
		of.have[k] = true
		f.setHave(of.first + k)
	}
	f.done.Add(of.size)
	return true
}

// scanPartial marks the chunks an earlier run left in temporary files:
// logged ones as they are, others only if they hash right.
func (f *fetch) scanPartial(ctx context.Context, logged map[int]bool) error {
	buf := make([]byte, content.MaxChunk)
	for _, j := range f.jobs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var good []target
		for k, t := range j.targets {
			if t.file.done {
				continue
			}
			ok := logged[j.idx[k]]
			if !ok {
				b := buf[:j.len]
				if _, err := t.file.f.ReadAt(b, t.off); err == nil && content.VerifyBlock(j.cid, b) == nil {
					ok = true
				}
			}
			if ok {
				good = append(good, t)
			}
		}
		if len(good) == 0 {
			continue
		}
		// A chunk present in one place is copied to the others.
		var data []byte
		if len(good) < len(j.targets) {
			b := buf[:j.len]
			if _, err := good[0].file.f.ReadAt(b, good[0].off); err != nil {
				continue
			}
			data = b
		}
		for k, t := range j.targets {
			if t.file.done {
				continue
			}
			if data != nil {
				if _, err := t.file.f.WriteAt(data, t.off); err != nil {
					return err
				}
			}
			t.file.mu.Lock()
			t.file.have[t.chunk] = true
			t.file.mu.Unlock()
			f.setHave(j.idx[k])
			f.done.Add(int64(j.len))
		}
		j.done = true
		f.resumed.Add(1)
	}
	return nil
}

// buildJobs makes one job per distinct chunk, with every place it goes.
func (f *fetch) buildJobs() {
	for i, of := range f.files {
		var off int64
		for k, c := range f.m.FileChunks(i) {
			j := f.byCID[c.CID.Cid]
			if j == nil {
				j = &job{cid: c.CID.Cid, len: int(c.Len)}
				f.byCID[c.CID.Cid] = j
				f.jobs = append(f.jobs, j)
			}
			if !of.done {
				j.targets = append(j.targets, target{file: of, chunk: k, off: off})
				j.idx = append(j.idx, of.first+k)
			}
			off += int64(c.Len)
		}
	}
	// Chunks whose every place is in a file an earlier run completed.
	for _, j := range f.jobs {
		if len(j.targets) == 0 {
			j.done = true
			f.resumed.Add(1)
		}
	}
}

func (f *fetch) setHave(i int) {
	f.mu.Lock()
	f.have[i/8] |= 1 << (i % 8)
	f.mu.Unlock()
}

// haveMap is the fetch's have-map, for peers that ask: what it holds and
// what it has asked for.
func (f *fetch) haveMap() protocol.HaveMap {
	f.mu.Lock()
	hm := protocol.HaveMap{Bits: append([]byte(nil), f.have...)}
	s := f.sched
	f.mu.Unlock()
	if s != nil {
		hm.Coming = s.coming(len(f.m.Chunks))
	}
	return hm
}

// readChunk serves a chunk this fetch has verified and written.
func (f *fetch) readChunk(c cid.Cid, buf []byte) ([]byte, bool) {
	j := f.byCID[c]
	if j == nil || len(buf) < j.len {
		return nil, false
	}
	for k, t := range j.targets {
		i := j.idx[k]
		f.mu.Lock()
		ok := f.have[i/8]&(1<<(i%8)) != 0
		f.mu.Unlock()
		if !ok {
			continue
		}
		t.file.mu.Lock()
		fh := t.file.f
		var err error
		if fh != nil {
			_, err = fh.ReadAt(buf[:j.len], t.off)
		}
		t.file.mu.Unlock()
		if fh != nil && err == nil {
			return buf[:j.len], true
		}
	}
	return nil, false
}

// run fetches every chunk still missing and finishes every file.
func (f *fetch) run(ctx context.Context, early []*source, disc *discovery, stopDiscovery func()) (*GetResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	total := f.m.Size()
	s := newScheduler(f.jobs)
	defer s.closeSources()
	f.mu.Lock()
	f.sched = s
	f.mu.Unlock()
	var hashers sync.WaitGroup
	allHashed := make(chan struct{})
	for _, of := range f.files {
		if !of.done {
			hashers.Go(func() {
				if err := f.hash(ctx, of); err != nil {
					cancel(err)
				}
			})
		}
	}
	go func() { hashers.Wait(); close(allHashed) }()
	var workers sync.WaitGroup
	start := func(src *source) {
		if !s.addSource(src) {
			return
		}
		if src.have != nil && src.files == nil {
			workers.Go(func() { f.watchHave(ctx, s, src) })
		}
		for range src.workers {
			workers.Go(func() {
				if err := f.work(ctx, s, src); err != nil {
					cancel(err)
				}
			})
		}
	}
	for _, src := range early {
		start(src)
	}
	disc.onRound(s.roundDone)
	searching := make(chan struct{})
	go func() {
		defer close(searching)
		for src := range disc.out {
			start(src)
		}
	}()

	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	stallAfter := 2*time.Duration(f.n.cfg.RequestTimeout) + time.Duration(f.n.cfg.FindTimeout)
	lastDone, lastMove := f.done.Load(), time.Now()
	lastFlush, lastSort := time.Now(), time.Now()
	recvAt := map[*source]int64{}
	var err error
	chunksIn, hashed := s.done, (chan struct{})(nil)
	for loop := true; loop; {
		select {
		case <-chunksIn:
			// Every chunk is in (or the fetch failed); the hashers finish
			// the last files.
			chunksIn, hashed = nil, allHashed
			if s.err() != nil {
				loop = false
			}
		case <-hashed:
			loop = false
		case <-ctx.Done():
			loop = false
		case now := <-tick.C:
			d := f.done.Load()
			f.report(Progress{Phase: "fetching", Done: d, Total: total, Peers: s.active(), Files: len(f.files)})
			if d != lastDone {
				lastDone, lastMove = d, now
			} else if now.Sub(lastMove) > stallAfter {
				s.stall(fmt.Errorf("%w: nothing arrived for %s (waiting for chunk %s)", ErrStalled, stallAfter, s.firstMissing()))
			}
			if now.Sub(lastSort) >= sortEvery(len(f.jobs)) {
				s.resort()
				for _, src := range s.sources() {
					if src.peer == "" {
						continue
					}
					r := src.recv.Load()
					rate := float64(r-recvAt[src]) / now.Sub(lastSort).Seconds()
					recvAt[src] = r
					s.pace(src, paceLimit(rate, src.workers))
				}
				lastSort = now
			}
			if now.Sub(lastFlush) >= time.Second {
				if err = f.flush(); err != nil {
					s.stall(err)
				}
				lastFlush = now
			}
		}
	}
	if err == nil {
		err = s.err()
	}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	// Stop whatever still runs: workers racing chunks already in, have-map
	// watchers (which would otherwise wait for peers that wait for us).
	cancel(err)
	stopDiscovery()
	<-searching
	workers.Wait()
	hashers.Wait()
	if ferr := f.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	for _, of := range f.files {
		if !of.done {
			return nil, fmt.Errorf("%s: not complete after every chunk arrived", content.Quote(of.rel))
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
	res := &GetResult{Files: len(f.files), Size: total, Refetch: int(f.refetch.Load()),
		Chunks: f.moved.Load(), Resumed: f.resumed.Load()}
	for _, src := range s.sources() {
		st := SourceStat{Peer: src.name, Bytes: src.bytes.Load(), Chunks: src.chunks.Load()}
		if st.Chunks == 0 {
			continue
		}
		res.Sources = append(res.Sources, st)
		if src.peer == "" {
			res.Local += st.Bytes
		} else {
			res.Peers++
		}
	}
	return res, nil
}

// sortEvery is how often chunks are re-sorted by rarity and partial
// holders' have-maps are asked again: often for the usual model, so a
// crowd learns quickly who has what, less for one of many chunks.
func sortEvery(chunks int) time.Duration {
	return min(time.Duration(chunks/20_000+1)*250*time.Millisecond, 4*time.Second)
}

// watchHave keeps a partial holder's have-map fresh.
func (f *fetch) watchHave(ctx context.Context, s *scheduler, src *source) {
	for {
		hm, err := src.have(ctx, f.m.Root)
		switch {
		case err == nil:
			s.setHave(src, hm)
			if hm.Complete {
				return
			}
		case errors.Is(err, protocol.ErrNotFound):
			// Found as a provider, holds nothing yet: ask again later.
		default:
			return // the stream broke; the workers will notice
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sortEvery(len(f.jobs))):
		}
	}
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
		if err == nil {
			src.recv.Add(int64(j.len))
		}
		if err != nil {
			protocol.Recycle(data)
			if ctx.Err() != nil {
				s.release(j, src)
				return nil
			}
			bad := errors.Is(err, content.ErrHashMismatch)
			f.refetch.Add(1)
			// A chunk the source lacks is asked of others; a source that
			// lied, broke or timed out is dropped from this fetch.
			drop := bad || !(errors.Is(err, protocol.ErrNotFound) || errors.Is(err, protocol.ErrUnavailable) ||
				errors.Is(err, content.ErrNotFound) || errors.Is(err, content.ErrChanged))
			dropped, ferr := s.fail(j, src, err, drop)
			if dropped && bad {
				f.n.log.Warn("peer sent a bad chunk; dropped", "peer", src.name, "cid", j.cid)
				f.n.strike(src.peer)
			} else if dropped {
				f.n.log.Info("peer dropped from fetch", "peer", src.name, "err", err)
			}
			if ferr != nil {
				return ferr
			}
			if drop {
				return nil
			}
			continue
		}
		if !s.claim(j) {
			// Raced in the end game and another source won.
			s.lost(j, src)
			protocol.Recycle(data)
			continue
		}
		werr := f.write(j, data)
		protocol.Recycle(data)
		if werr != nil {
			return werr
		}
		s.complete(j, src)
		src.bytes.Add(int64(j.len))
		src.chunks.Add(1)
		f.moved.Add(1)
		if f.announced.CompareAndSwap(false, true) {
			// Able to serve part of the model: tell the swarm.
			go func() {
				actx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := f.n.DHT.Provide(actx, f.m.Root, true); err != nil {
					f.n.log.Debug("announcing a partial root", "root", f.m.Root, "err", err)
				}
			}()
		}
	}
}

// write puts a verified chunk in every place it goes, logs it, and
// finishes the files it completes.
func (f *fetch) write(j *job, data []byte) error {
	for _, t := range j.targets {
		if _, err := t.file.f.WriteAt(data, t.off); err != nil {
			return fmt.Errorf("writing %s: %w", content.Quote(t.file.rel), err)
		}
	}
	for k, t := range j.targets {
		f.setHave(j.idx[k])
		f.mu.Lock()
		f.dirty[t.file] = true
		f.mu.Unlock()
		f.state.add('c', j.idx[k])
		t.file.written(t.chunk)
	}
	f.done.Add(int64(j.len * len(j.targets)))
	return nil
}

// flush makes the progress log durable: first the data it names.
func (f *fetch) flush() error {
	return f.state.flush(func() error {
		f.mu.Lock()
		dirty := f.dirty
		f.dirty = map[*outFile]bool{}
		f.mu.Unlock()
		for of := range dirty {
			// Sync outside the file's lock: writers and the hasher go on
			// meanwhile. The file stays open until the fetch ends.
			of.mu.Lock()
			fh, done := of.f, of.done
			of.mu.Unlock()
			if fh != nil && !done {
				if err := fh.Sync(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// written records chunk k as written and wakes the file's hasher.
func (of *outFile) written(k int) {
	of.mu.Lock()
	of.have[k] = true
	of.mu.Unlock()
	select {
	case of.wake <- struct{}{}:
	default:
	}
}

// hash follows a file's contiguous written prefix, reading it back from
// the page cache off the workers' path, and finishes the file once it is
// whole. It owns of.frontier, of.h and of.buf.
func (f *fetch) hash(ctx context.Context, of *outFile) error {
	for {
		of.mu.Lock()
		end := of.frontier
		for end < len(of.have) && of.have[end] {
			end++
		}
		done := of.done
		of.mu.Unlock()
		if done {
			return nil
		}
		for ; of.frontier < end; of.frontier++ {
			start := int64(0)
			if of.frontier > 0 {
				start = of.chunkEnd[of.frontier-1]
			}
			n := of.chunkEnd[of.frontier] - start
			if of.buf == nil {
				of.buf = make([]byte, content.MaxChunk)
			}
			if _, err := of.f.ReadAt(of.buf[:n], start); err != nil {
				return fmt.Errorf("reading back %s: %w", content.Quote(of.rel), err)
			}
			of.h.Write(of.buf[:n])
		}
		if of.frontier == len(of.have) {
			of.buf = nil
			return f.finish(of)
		}
		select {
		case <-of.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// finish checks a whole file's sha256, syncs it, renames it into place,
// syncs its folder and logs it. The file stays open for serving until the
// fetch ends.
func (f *fetch) finish(of *outFile) error {
	of.mu.Lock()
	defer of.mu.Unlock()
	if of.done {
		return nil
	}
	if sum := of.h.Sum(nil); string(sum) != string(f.m.Files[of.idx].SHA256) {
		return fmt.Errorf("%w: %s: whole-file sha256 does not match the manifest", ErrIntegrity, content.Quote(of.rel))
	}
	if err := of.f.Sync(); err != nil {
		return err
	}
	traceDurable("sync", of.tmp)
	if err := f.root.Rename(of.tmp, of.rel); err != nil {
		return err
	}
	traceDurable("rename", of.rel)
	if err := syncDir(filepath.Join(f.dir, filepath.Dir(of.rel))); err != nil {
		return err
	}
	traceDurable("syncdir", filepath.Dir(of.rel))
	of.done = true
	f.state.add('f', of.idx)
	return nil
}

// close ends a fetch that did not complete: files are closed, temporary
// files and the progress log stay for a later run.
func (f *fetch) close() {
	for _, of := range f.files {
		of.mu.Lock()
		if of.f != nil {
			of.f.Close()
			of.f = nil
		}
		of.mu.Unlock()
	}
	if f.state != nil {
		f.state.close()
	}
	if f.root != nil {
		f.root.Close()
	}
}

// complete ends a fetch that completed: files are closed and the progress
// log removed.
func (f *fetch) complete() error {
	for _, of := range f.files {
		of.mu.Lock()
		if of.f != nil {
			of.f.Close()
			of.f = nil
		}
		of.mu.Unlock()
	}
	f.root.Close()
	return f.state.remove()
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
	}
	return syncDir(filepath.Dir(dir))
}
