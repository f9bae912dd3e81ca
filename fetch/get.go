package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// Errors a fetch ends with.
var (
	// ErrNoProviders reports a root nobody was found to provide in time.
	ErrNoProviders = errors.New("no providers found")
	// ErrNotEmpty reports an output folder that exists and is not empty.
	ErrNotEmpty = errors.New("output folder exists and is not empty (use --force to write into it)")
	// ErrIntegrity reports data that failed verification from every source.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrStalled reports a fetch during which nothing arrived for too long.
	ErrStalled = errors.New("fetch stalled")
	// ErrNoSource reports chunks that no source found could send: the
	// peers that claimed the model failed (they no longer hold it, say).
	// What arrived is kept for a later run.
	ErrNoSource = errors.New("no source could send the model")
	// ErrFolderBusy reports an output folder another fetch is writing to.
	ErrFolderBusy = errors.New("another fetch is writing to this folder")
)

// Network is what a fetch needs of the peer-to-peer network. The node
// implements it; a fetch never sees the host or the DHT.
type Network interface {
	// Self is this node's peer ID.
	Self() peer.ID
	// Dial connects to p and opens an exchange client to it. relayed
	// says the connection goes through a relay.
	Dial(ctx context.Context, p peer.AddrInfo) (c Conn, relayed bool, err error)
	// PeerInfo is what the network knows of how to reach p.
	PeerInfo(p peer.ID) peer.AddrInfo
	// FindProviders streams the providers of key until ctx ends.
	FindProviders(ctx context.Context, key cid.Cid) <-chan peer.AddrInfo
	// ExchangePeers lists the connected peers that speak the exchange
	// now, and tells joined of those that start to, until ctx ends.
	ExchangePeers(ctx context.Context, joined func(peer.ID)) []peer.ID
	// Strike records that p sent bad data; Banned reports a peer with
	// too many recent strikes.
	Strike(p peer.ID)
	Banned(p peer.ID) bool
	// Provide announces that this node can serve key (a fetch announces
	// its root once it holds a chunk). It may do nothing.
	Provide(ctx context.Context, key cid.Cid) error
}

// Conn is an exchange client to one peer (protocol.Client).
type Conn interface {
	Get(ctx context.Context, c cid.Cid, max int) ([]byte, error)
	Have(ctx context.Context, root cid.Cid) (protocol.HaveMap, error)
	Records(ctx context.Context, root cid.Cid) ([][]byte, error)
	Close() error
}

// Config tunes every fetch of an Engine.
type Config struct {
	// RequestTimeout bounds a request that stopped delivering.
	RequestTimeout time.Duration
	// FindTimeout bounds the first search for sources.
	FindTimeout time.Duration
	// LogKey authenticates the resume log (threat 24): a log not tagged
	// with it is not trusted.
	LogKey []byte
}

// Engine runs a node's fetches and serves what they have so far, beside
// what the index holds: it is the node's protocol.Store.
type Engine struct {
	net Network
	idx *content.Index
	cfg Config
	log *slog.Logger

	mu     sync.RWMutex
	active map[cid.Cid]*fetch
}

// New returns an engine fetching over net into folders recorded in idx.
func New(net Network, idx *content.Index, cfg Config, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{net: net, idx: idx, cfg: cfg, log: log, active: map[cid.Cid]*fetch{}}
}

// SetLogKey sets the key that authenticates resume logs, before the
// first fetch (a daemon keeps one in its home, so its logs outlive it).
func (e *Engine) SetLogKey(k []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg.LogKey = k
}

func (e *Engine) logKey() []byte {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.cfg.LogKey
}

// lateSourceGrace is the least a fetch that found no source in its first
// discovery round waits for one before it gives up (it waits until
// find_timeout otherwise).
const lateSourceGrace = 3 * time.Second

// Progress is a snapshot of a fetch.
type Progress struct {
	Phase string `json:"phase"` // "finding", "manifest", "resuming", "fetching", "done"
	Done  int64  `json:"done"`  // bytes verified and written
	Total int64  `json:"total"` // bytes in the model
	Peers int    `json:"peers"` // sources in use now
	Files int    `json:"files"` // files in the model
	// Held and Shares (phase "plan", once the manifest is in): the bytes
	// of the model this node already holds under other roots, which are
	// copied rather than fetched, and which roots they are in.
	Held   int64           `json:"held,omitempty"`
	Shares []content.Share `json:"shares,omitempty"`
}

// Options tune one fetch.
type Options struct {
	// Force writes into an existing non-empty folder, replacing files of
	// the same names.
	Force bool
	// Progress, if set, is called now and then with a snapshot.
	Progress func(Progress)
	// Records, if set, is handed the signed records the first sources
	// hold for the root (asked all at once, for a few seconds at most).
	Records func(envs [][]byte)
	// Vouch, if set, is called before any chunk moves; an error stops the
	// fetch. With WaitRecords it is called once the records are in.
	Vouch       func() error
	WaitRecords bool
	// WholeFile hashes every file whole against the manifest's sha256
	// before it is renamed into place, for callers to whom that hash is
	// a name (a Hugging Face cache blob). A plain fetch needs no such
	// pass: every chunk is verified against its CID as it arrives.
	WholeFile bool
	// Admit, if set, is shown the manifest before any chunk moves; an
	// error stops the fetch (a disk budget the model would exceed).
	Admit func(m *content.Manifest) error
	// Choice, unless whole, fetches only part of the model: some files,
	// some tensors of the safetensors files. The output is then not the
	// root (it is not recorded as held); every byte of it is still
	// verified.
	Choice Choice
	// Have, if set, names files the caller already has (a blob in a
	// Hugging Face cache, checked): they are not fetched, as if left out
	// by Choice.
	Have func(f content.File) bool
	// Stored records the root as the node's own copy (fetched into its
	// store for a pin or a follow): gc may delete its files. Otherwise
	// the folder is the user's, and gc only ever forgets it.
	Stored bool
}

// SourceStat is what one source delivered.
type SourceStat struct {
	Peer   string `json:"peer"` // peer ID, or "local"
	Bytes  int64  `json:"bytes"`
	Chunks int64  `json:"chunks"`
	// Relayed: the chunks came through a relay (no hole could be punched).
	Relayed bool `json:"relayed"`
}

// Result describes a finished fetch.
type Result struct {
	Root    cid.Cid       `json:"root"`
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
	// Held: the root was already held in this folder, unchanged; nothing
	// was fetched.
	Held bool `json:"held,omitempty"`
	// Partial: only the part of the model Options.Choice chose was
	// written (Files and Size are of that part).
	Partial bool `json:"partial,omitempty"`
	// Shares: what of the model this node held under other roots before
	// the fetch (copied, not fetched: Local).
	Shares []content.Share  `json:"shares,omitempty"`
	Pickle []content.Pickle `json:"pickle,omitempty"` // by content, as written

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
func (e *Engine) CheckGet(root cid.Cid, dir string, force bool) (done bool, err error) {
	if err := content.CheckRoot(root); err != nil {
		return false, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	if e.heldAt(root, dir) {
		return true, nil
	}
	if err := CheckGetDir(dir, root, force); err != nil {
		return false, err
	}
	// A fetch running into dir now: refused before any traffic too.
	var lock dirLock
	defer lock.release()
	return false, lock.take(dir, false)
}

// heldPickles lists the pickles among a held root's files.
func (e *Engine) heldPickles(root cid.Cid) []content.Pickle {
	files, _ := e.idx.Files(root)
	return content.PickleFiles(files)
}

// heldAt reports whether the index holds root in dir with every file
// unchanged since it was recorded.
func (e *Engine) heldAt(root cid.Cid, dir string) bool {
	files, err := e.idx.PlaceFiles(root, dir)
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
// place once complete. Progress is logged in dir/.shoal-fetch so that
// running Get again after an interruption (a kill -9 included) fetches
// only what is missing. While it runs, the engine serves the chunks it
// has; when it ends, the model is recorded in the index and served from
// dir.
func (e *Engine) Get(ctx context.Context, root cid.Cid, dir string, opt Options) (*Result, error) {
	start := time.Now()
	e.log.Debug("fetch started", "root", root, "dir", dir)
	res, err := e.get(ctx, root, dir, opt)
	if err != nil {
		e.log.Debug("fetch ended", "root", root, "err", err, "took", time.Since(start).Round(time.Millisecond))
		return nil, err
	}
	e.log.Debug("fetch finished", "root", root, "bytes", res.Size, "chunks", res.Chunks, "peers", res.Peers, "held", res.Held,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

func (e *Engine) get(ctx context.Context, root cid.Cid, dir string, opt Options) (*Result, error) {
	start := time.Now()
	if err := content.CheckRoot(root); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if e.heldAt(root, dir) {
		// Fetched here before and untouched since: nothing to do.
		m, _, err := e.idx.Manifest(root)
		if err != nil {
			return nil, err
		}
		if opt.Vouch != nil {
			if err := opt.Vouch(); err != nil {
				return nil, err
			}
		}
		return &Result{Root: root, Dir: dir, Files: len(m.Files), Size: m.Size(), Held: true,
			Elapsed: time.Since(start), Resumed: int64(m.Distinct()), Manifest: m, Pickle: e.heldPickles(root)}, nil
	}
	if err := CheckGetDir(dir, root, opt.Force); err != nil {
		return nil, err
	}
	// One fetch at a time per folder: the lock is taken here when an
	// earlier run left state (a resume, or a fetch still running), else
	// when the state is created, and held until Get returns.
	var lock dirLock
	defer lock.release()
	if err := lock.take(dir, false); err != nil {
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
	disc := e.discover(dctx, root)
	// Discovery's goroutines end before Get returns.
	defer func() { stopDiscovery(); disc.wait() }()

	// The manifest, raced across every source as it is found: the first
	// to serve all of it wins, so a source that stalls costs nothing
	// while another answers. The sources found meanwhile go on to the
	// fetch; closing them again when Get returns is harmless.
	var early []*source
	defer func() {
		for _, s := range early {
			s.close()
		}
	}()
	m, blocks, err := e.raceManifest(ctx, root, disc, start, &early, report)
	if err != nil {
		return nil, err
	}
	disc.setKeys(m)
	var sel selection
	if !opt.Choice.Whole() {
		if sel, err = e.choose(ctx, m, opt.Choice, early); err != nil {
			return nil, err
		}
	}
	if opt.Have != nil {
		sel = haveFiles(m, sel, opt.Have)
	}
	shared := e.idx.Overlap(m, sel.wants(m))
	if shared.Held > 0 && !slices.ContainsFunc(early, func(s *source) bool { return s.conn == nil }) {
		// Chunks held under other roots are copied, not fetched: this
		// node's index is a source of those, first, so that peers
		// started after it leave it what it holds.
		s := e.localSource()
		s.have = &protocol.HaveMap{Bits: shared.Bits}
		early = append([]*source{s}, early...)
	}
	f := newFetch(e, m, blocks, dir, report)
	f.sel = sel
	report(Progress{Phase: "plan", Total: f.total(), Files: f.nfiles(), Held: shared.Held, Shares: shared.Shares})
	if opt.Admit != nil {
		if err := opt.Admit(m); err != nil {
			return nil, err
		}
	}

	// Who vouches for this root: the records the early sources hold (asked
	// all at once, briefly). A vouch that waits for them is checked before
	// any chunk moves; otherwise the records are gathered while the
	// chunks move (a source that never answers must not hold the fetch
	// back). Records asked of sources still pending when Get returns fail
	// as the sources close.
	recordsIn := make(chan struct{})
	var records sync.WaitGroup
	rctx, stopRecords := context.WithCancel(ctx)
	defer records.Wait()
	defer stopRecords() // before the wait: a source that never answers does not hold Get

	records.Go(func() {
		defer close(recordsIn)
		e.gatherRecords(rctx, root, early, opt.Records)
	})
	if opt.WaitRecords {
		<-recordsIn
	}
	if opt.Vouch != nil {
		if err := opt.Vouch(); err != nil {
			return nil, err
		}
	}

	f.disc, f.lock, f.wholeFile = disc, &lock, opt.WholeFile
	if err := f.prepare(ctx); err != nil {
		f.close()
		return nil, err
	}
	e.register(f)
	defer e.unregister(f)
	res, err := f.run(ctx, early, disc, stopDiscovery)
	if err != nil {
		f.close()
		return nil, err
	}
	source := content.SourceFetched
	if opt.Stored {
		source = content.SourceStored
	}
	if sel == nil { // a part of a model is not the model: not recorded as held
		info := content.RootInfo{Name: filepath.Base(dir), Dir: dir, Size: m.Size(), Files: len(m.Files), Source: source, Time: time.Now().UTC()}
		if err := e.idx.Put(&content.Held{Info: info, Blocks: blocks, Files: f.infos, M: m}); err != nil {
			f.close()
			return nil, fmt.Errorf("files written, but recording them failed: %w", err)
		}
	}
	if err := f.complete(); err != nil {
		return nil, err
	}
	res.Root, res.Dir, res.Manifest, res.Partial, res.Shares = root, dir, m, sel != nil, shared.Shares
	select { // records still on their way get a moment more
	case <-recordsIn:
	case <-time.After(500 * time.Millisecond):
	}
	res.Elapsed = time.Since(start)
	res.Pickle = content.PickleFiles(f.infos)
	report(Progress{Phase: "done", Done: f.total(), Total: f.total(), Files: res.Files, Peers: res.Peers})
	return res, nil
}

// manifestResult is one source's attempt at the manifest.
type manifestResult struct {
	m      *content.Manifest
	blocks []content.Block
	err    error
}

// raceManifest asks every source discovery finds for the manifest of
// root, all at once, and returns the first complete, verified one. Every
// source it met is appended to early. It gives up when discovery has
// found nobody by find_timeout (ErrNoProviders), or when every source
// found has failed and no other comes; a manifest that is malformed or
// unsafe is refused at once (the root CID covers it: it is bad
// everywhere).
func (e *Engine) raceManifest(ctx context.Context, root cid.Cid, disc *discovery, start time.Time,
	early *[]*source, report func(Progress)) (*content.Manifest, []content.Block, error) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan manifestResult)
	pending := 0
	var lastErr error
	first := disc.first
	var late <-chan time.Time
	for {
		select {
		case s, ok := <-disc.out:
			if !ok {
				return nil, nil, noManifest(root, lastErr)
			}
			*early = append(*early, s)
			pending++
			report(Progress{Phase: "manifest", Peers: len(*early)})
			go func() {
				m, blocks, err := fetchManifest(mctx, s, root)
				select {
				case results <- manifestResult{m, blocks, err}:
				case <-mctx.Done():
				}
			}()
			continue
		case r := <-results:
			pending--
			if r.err == nil {
				return r.m, r.blocks, nil
			}
			if errors.Is(r.err, content.ErrBadPath) || errors.Is(r.err, content.ErrBadManifest) {
				return nil, nil, fmt.Errorf("refusing manifest of %s: %w", root, r.err)
			}
			lastErr = r.err
		case <-first:
			// The first round is over. Discovery goes on (later rounds,
			// peers that connect): while nobody is left trying, wait
			// for it until find_timeout, and a moment at least.
			first = nil
			t := time.NewTimer(max(lateSourceGrace, time.Until(start.Add(e.cfg.FindTimeout))))
			defer t.Stop()
			late = t.C
		case <-late:
			late = nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if first == nil && late == nil && pending == 0 {
			return nil, nil, noManifest(root, lastErr)
		}
	}
}

// noManifest says why no manifest came: nobody found, or every source
// failed.
func noManifest(root cid.Cid, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("manifest of %s: %w", root, lastErr)
	}
	return fmt.Errorf("%w for %s", ErrNoProviders, root)
}

// recordsWait bounds asking the early sources for signed records.
const recordsWait = 2 * time.Second

// gatherRecords asks every source for the signed records naming root, all
// at once and for a few seconds at most, and hands them to take.
func (e *Engine) gatherRecords(ctx context.Context, root cid.Cid, sources []*source, take func([][]byte)) {
	if take == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, recordsWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range sources {
		if s.conn == nil {
			continue
		}
		wg.Go(func() {
			if envs, err := s.conn.Records(rctx, root); err == nil {
				take(envs)
			}
		})
	}
	wg.Wait()
}

// fetchManifest fetches, verifies and decodes every block of a manifest
// from one source.
func fetchManifest(ctx context.Context, s *source, root cid.Cid) (*content.Manifest, []content.Block, error) {
	return content.AssembleManifest(root, func(c cid.Cid) ([]byte, error) {
		data, err := s.get(ctx, c, content.MaxBlock)
		// A busy peer (its memory taken by others) is asked again a few
		// times: the manifest is small, and it may be the only holder.
		for pause := 250 * time.Millisecond; errors.Is(err, protocol.ErrBusy) && pause <= 4*time.Second; pause *= 2 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pause):
			}
			data, err = s.get(ctx, c, content.MaxBlock)
		}
		if err != nil {
			return nil, err
		}
		// Blocks are kept; give back the receive buffer.
		out := append([]byte(nil), data...)
		protocol.Recycle(data)
		return out, nil
	})
}
