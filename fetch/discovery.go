package fetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// source is somewhere chunks come from: this node's own index or a peer.
type source struct {
	name    string
	peer    peer.ID // empty for this node
	relayed bool    // reached through a relay
	workers int
	// conn is the exchange with a peer; nil for this node, whose index
	// (idx) holds everything it is asked for.
	conn Conn
	idx  *content.Index

	// files: a file-key provider holds only these files (nil: any). Set
	// before the source is handed to a fetch, read-only after.
	files map[int]bool
	// have, for this node's index, is what it holds of a model it holds
	// under other roots only (nil: the whole model).
	have *protocol.HaveMap

	bytes  atomic.Int64 // delivered and used
	chunks atomic.Int64
	recv   atomic.Int64 // received and verified, used or not (for its rate)
	recvN  atomic.Int64 // chunks received and verified, used or not
}

// Pacing: a source may have as many requests outstanding as it delivers in
// queueTarget, within [minInFlight, its workers]. A slow or capped peer
// thus gets few requests at a time, and fetchers sharing it do not queue
// the same chunks at it; a fast one gets a deep pipeline.
const (
	queueTarget   = 500 * time.Millisecond
	minInFlight   = 2
	startInFlight = 4
)

// paceLimit is the in-flight limit for a source delivering rate bytes/s
// in perSec chunks a second: as many chunks as it delivers in queueTarget,
// counted in whole chunks, or in the chunks it actually sends when they
// are small (a model of many small files is latency-bound otherwise).
func paceLimit(rate, perSec float64, workers int) int {
	n := int(max(rate/float64(content.MaxChunk), perSec)*queueTarget.Seconds()) + minInFlight
	return max(minInFlight, min(n, workers))
}

// get asks the source for block or chunk c of at most max bytes.
func (s *source) get(ctx context.Context, c cid.Cid, max int) ([]byte, error) {
	if s.conn != nil {
		return s.conn.Get(ctx, c, max)
	}
	if c.Type() == content.CodecDagCBOR {
		return s.idx.Block(c)
	}
	return s.idx.ReadChunk(c, make([]byte, max))
}

// close closes the connection to a peer source.
func (s *source) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

// localSource is this node's index: it holds whatever it holds whole.
func (e *Engine) localSource() *source {
	return &source{name: "local", workers: 2, idx: e.idx}
}

// peerSource dials p and makes it a source.
func (e *Engine) peerSource(ctx context.Context, p peer.AddrInfo) (*source, error) {
	conn, relayed, err := e.net.Dial(ctx, p)
	if err != nil {
		return nil, err
	}
	return &source{name: p.ID.String(), peer: p.ID, relayed: relayed, conn: conn,
		workers: protocol.MaxInFlight / 2}, nil
}

// discovery finds sources for a root, and later for its file keys, in
// rounds: at once, then again and again with a growing pause, so peers
// that start holding the model while a fetch runs are found too.
type discovery struct {
	e     *Engine
	ctx   context.Context
	root  cid.Cid
	out   chan *source
	first chan struct{} // closed when the first round ends

	mu   sync.Mutex
	keys map[cid.Cid][]int // file key → files it covers
	seen map[peer.ID]bool
	// senders counts goroutines that may send on out; once closing is
	// set no new one starts, and out is closed after the last ends.
	senders sync.WaitGroup
	closing bool
	ended   chan struct{} // closed when loop has closed out
	rounds  func(foundNew bool)
}

func (e *Engine) discover(ctx context.Context, root cid.Cid) *discovery {
	d := &discovery{e: e, ctx: ctx, root: root, out: make(chan *source), first: make(chan struct{}), ended: make(chan struct{}), seen: map[peer.ID]bool{e.net.Self(): true}}
	go d.loop(ctx)
	return d
}

// wait waits, once ctx has ended, for every goroutine of the discovery.
func (d *discovery) wait() { <-d.ended }

// offer proposes a peer met otherwise than through the DHT (it asked us
// for this root) as a source.
func (d *discovery) offer(p peer.ID) {
	if !d.claim(d.ctx, p) {
		return
	}
	go func() {
		defer d.senders.Done()
		ai := d.e.net.PeerInfo(p)
		s, err := d.e.peerSource(d.ctx, ai)
		if err != nil {
			d.forget(p)
			return
		}
		select {
		case d.out <- s:
		case <-d.ctx.Done():
			s.close()
		}
	}()
}

// claim marks p as seen and reports whether the caller is to try it as a
// source: not seen before, not banned, discovery still running. A caller
// told yes sends on out (or not) from a goroutine counted in senders.
func (d *discovery) claim(ctx context.Context, p peer.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	skip := d.seen[p] || d.e.net.Banned(p) || ctx.Err() != nil || d.closing
	d.seen[p] = true
	if !skip {
		d.senders.Add(1)
	}
	return !skip
}

// forget lets a peer that could not be used be offered again later.
func (d *discovery) forget(p peer.ID) {
	d.mu.Lock()
	delete(d.seen, p)
	d.mu.Unlock()
}

// setKeys adds the file keys to search for, once the manifest is known.
func (d *discovery) setKeys(m *content.Manifest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = map[cid.Cid][]int{}
	for i, f := range m.Files {
		if f.Size < content.FileKeyMin {
			continue
		}
		k := content.FileKey([32]byte(f.SHA256))
		d.keys[k] = append(d.keys[k], i)
	}
}

// onRound sets what to tell after each round: whether it found a source.
func (d *discovery) onRound(f func(foundNew bool)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rounds = f
}

func (d *discovery) loop(ctx context.Context) {
	defer func() {
		d.mu.Lock()
		d.closing = true
		d.mu.Unlock()
		d.senders.Wait()
		close(d.out)
		close(d.ended)
	}()
	if _, err := d.e.idx.Block(d.root); err == nil {
		select {
		case d.out <- d.e.localSource():
		case <-ctx.Done():
			return
		}
	}
	// Peers already connected (bootstrap, mDNS, anyone) are asked at
	// once, beside the first DHT round; peers that connect later are
	// asked when they do.
	probes := d.askConnected(ctx)
	pause := 250 * time.Millisecond
	for round := 0; ; round++ {
		timeout := d.e.cfg.FindTimeout
		if round > 0 {
			timeout = min(timeout, 20*time.Second)
		}
		found := d.round(ctx, timeout)
		if round == 0 {
			probes.Wait()
			close(d.first)
		}
		d.mu.Lock()
		report := d.rounds
		d.mu.Unlock()
		if report != nil {
			report(found)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// probeTimeout bounds asking a connected peer whether it holds a root.
const probeTimeout = 10 * time.Second

// askConnected asks every connected Shoal peer for the root's have-map,
// now and, until ctx ends, as peers connect; those that hold any of it
// become sources. It returns when the peers connected now have been asked
// (the wait group), and goes on watching in the background.
func (d *discovery) askConnected(ctx context.Context) *sync.WaitGroup {
	var now sync.WaitGroup
	for _, p := range d.e.net.ExchangePeers(ctx, func(p peer.ID) { d.probe(ctx, p, nil) }) {
		d.probe(ctx, p, &now)
	}
	return &now
}

// probe asks a connected peer for the root's have-map and sends it on as
// a source if it holds any of the model (or is fetching it). A peer that
// holds nothing is forgotten again, so a DHT round may offer it later.
func (d *discovery) probe(ctx context.Context, p peer.ID, wg *sync.WaitGroup) {
	if !d.claim(ctx, p) {
		return
	}
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		defer d.senders.Done()
		if wg != nil {
			defer wg.Done()
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		s, err := d.e.peerSource(pctx, d.e.net.PeerInfo(p))
		if err != nil {
			d.forget(p)
			return
		}
		hm, err := s.conn.Have(pctx, d.root)
		if err != nil || (!hm.Complete && len(hm.Bits) == 0 && len(hm.Coming) == 0) {
			s.close()
			d.forget(p)
			return
		}
		d.e.log.Debug("connected peer holds root", "peer", p, "root", d.root)
		select {
		case d.out <- s:
		case <-ctx.Done():
			s.close()
		}
	}()
}

// round queries the root and every file key once and sends each new,
// reachable, unbanned provider. It reports whether it sent any.
func (d *discovery) round(ctx context.Context, timeout time.Duration) bool {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d.mu.Lock()
	queries := map[cid.Cid][]int{d.root: nil}
	for k, files := range d.keys {
		queries[k] = files
	}
	d.mu.Unlock()
	var found atomic.Bool
	var wg sync.WaitGroup
	for key, files := range queries {
		wg.Go(func() {
			for p := range d.e.net.FindProviders(rctx, key) {
				d.mu.Lock()
				skip := d.seen[p.ID] || d.e.net.Banned(p.ID)
				d.seen[p.ID] = true
				d.mu.Unlock()
				if skip {
					continue
				}
				wg.Go(func() {
					s, err := d.e.peerSource(ctx, p)
					if err != nil {
						d.e.log.Debug("provider unreachable", "peer", p.ID, "err", err)
						d.forget(p.ID) // try again next round
						return
					}
					if files != nil {
						s.files = map[int]bool{}
						for _, i := range files {
							s.files[i] = true
						}
					}
					select {
					case d.out <- s:
						found.Store(true)
					case <-ctx.Done():
						s.close()
					}
				})
			}
		})
	}
	wg.Wait()
	return found.Load()
}
