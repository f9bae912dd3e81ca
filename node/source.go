package node

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
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
	get     func(ctx context.Context, c cid.Cid, max int) ([]byte, error)
	// have asks for the source's have-map of a root; nil means the source
	// holds everything it is asked for.
	have func(ctx context.Context, root cid.Cid) (protocol.HaveMap, error)
	// records asks for the signed records naming a root (nil: none).
	records func(ctx context.Context, root cid.Cid) ([][]byte, error)
	close   func()

	// Guarded by the scheduler's mutex.
	hm       protocol.HaveMap
	files    map[int]bool // a file-key provider: only these files (nil: any)
	inflight int          // requests outstanding
	limit    int          // requests allowed outstanding (0: workers)

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

// has reports whether the source is believed to hold j. Called with the
// scheduler's mutex held.
func (s *source) has(j *job) bool {
	if s.files != nil {
		for _, t := range j.targets {
			if s.files[t.file.idx] {
				return true
			}
		}
		return false
	}
	if s.hm.Complete {
		return true
	}
	for _, i := range j.idx {
		if s.hm.Has(i) {
			return true
		}
	}
	return false
}

// soon reports whether the source, itself fetching, has asked for j.
// Called with the scheduler's mutex held.
func (s *source) soon(j *job) bool {
	for _, i := range j.idx {
		if s.hm.Soon(i) {
			return true
		}
	}
	return false
}

func (n *Node) localSource() *source {
	return &source{
		name:    "local",
		workers: 2,
		hm:      protocol.HaveMap{Complete: true},
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
	n.awaitDirect(cctx, p.ID)
	// Over a relay's limited connection only when no direct one came: a
	// relay without relay_data cuts it after 128 KiB, enough for
	// have-maps and manifests, not for a model.
	s, err := n.Host.NewStream(network.WithAllowLimitedConn(cctx, "shoal"), p.ID, protocol.ID)
	if err != nil {
		return nil, err
	}
	relayed := isRelayAddr(s.Conn().RemoteMultiaddr())
	// The peer closes a stream left idle for a few seconds (a worker with
	// nothing to take, a have-map asked now and then): the client then
	// opens another.
	reopen := func(ctx context.Context) (protocol.Stream, error) {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s, err := n.Host.NewStream(network.WithAllowLimitedConn(rctx, "shoal"), p.ID, protocol.ID)
		if err != nil {
			return nil, err
		}
		return limitStream(s, nil, n.down, nil, &n.fetched), nil
	}
	cl := protocol.NewReopeningClient(limitStream(s, nil, n.down, nil, &n.fetched), reopen)
	// A request times out when the stream stops delivering, not after a
	// fixed time from when it was queued: on a capped or slow link a
	// chunk, and the chunks queued before it, take longer than that.
	cl.Timeout = time.Duration(n.cfg.RequestTimeout)
	cl.FirstByte = firstByteTimeout
	done := n.addSourcePeer(p.ID)
	return &source{
		name:    p.ID.String(),
		peer:    p.ID,
		relayed: relayed,
		workers: protocol.MaxInFlight / 2,
		limit:   startInFlight,
		get:     cl.Get,
		have:    cl.Have,
		records: cl.Records,
		close:   func() { cl.Close(); done() },
	}, nil
}

// firstByteTimeout is how long a source that has sent no block yet may
// send nothing at all after a request before it loses its work to others
// (request_timeout applies once it has delivered).
const firstByteTimeout = 5 * time.Second

// directWait bounds the wait for hole punching to turn a relayed
// connection into a direct one before a source settles for the relay.
const directWait = 8 * time.Second

// awaitDirect waits, at most directWait, while every connection to p goes
// through a relay: DCUtR is usually punching a hole meanwhile.
func (n *Node) awaitDirect(ctx context.Context, p peer.ID) {
	direct := func() bool {
		for _, c := range n.Host.Network().ConnsToPeer(p) {
			if !isRelayAddr(c.RemoteMultiaddr()) {
				return true
			}
		}
		return false
	}
	if direct() || !n.cfg.HolePunching {
		return
	}
	deadline := time.Now().Add(directWait)
	for !direct() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !direct() {
		n.log.Info("no direct connection; using the relay", "peer", p)
	}
}

// discovery finds sources for a root, and later for its file keys, in
// rounds: at once, then again and again with a growing pause, so peers
// that start holding the model while a fetch runs are found too.
type discovery struct {
	n     *Node
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
	rounds  func(foundNew bool)
}

func (n *Node) discover(ctx context.Context, root cid.Cid) *discovery {
	d := &discovery{n: n, ctx: ctx, root: root, out: make(chan *source), first: make(chan struct{}), seen: map[peer.ID]bool{n.Host.ID(): true}}
	go d.loop(ctx)
	return d
}

// offer proposes a peer met otherwise than through the DHT (it asked us
// for this root) as a source.
func (d *discovery) offer(p peer.ID) {
	if !d.claim(d.ctx, p) {
		return
	}
	go func() {
		defer d.senders.Done()
		ai := d.n.Host.Peerstore().PeerInfo(p)
		s, err := d.n.peerSource(d.ctx, ai)
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
	skip := d.seen[p] || d.n.banned(p) || ctx.Err() != nil || d.closing
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
		if f.Size < FileKeyMin {
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
	}()
	if _, err := d.n.Index.Block(d.root); err == nil {
		select {
		case d.out <- d.n.localSource():
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
		timeout := time.Duration(d.n.cfg.FindTimeout)
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
	sub, err := d.n.Host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		d.n.log.Warn("peer events", "err", err)
	} else {
		go func() {
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-sub.Out():
					switch ev := e.(type) {
					case event.EvtPeerIdentificationCompleted:
						if slices.Contains(ev.Protocols, protocol.ID) {
							d.probe(ctx, ev.Peer, nil)
						}
					case event.EvtPeerProtocolsUpdated:
						if slices.Contains(ev.Added, protocol.ID) {
							d.probe(ctx, ev.Peer, nil)
						}
					}
				}
			}
		}()
	}
	for _, p := range d.n.Host.Network().Peers() {
		if ok, _ := d.n.Host.Peerstore().SupportsProtocols(p, protocol.ID); len(ok) > 0 {
			d.probe(ctx, p, &now)
		}
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
		s, err := d.n.peerSource(pctx, d.n.Host.Peerstore().PeerInfo(p))
		if err != nil {
			d.forget(p)
			return
		}
		hm, err := s.have(pctx, d.root)
		if err != nil || (!hm.Complete && len(hm.Bits) == 0 && len(hm.Coming) == 0) {
			s.close()
			d.forget(p)
			return
		}
		d.n.log.Debug("connected peer holds root", "peer", p, "root", d.root)
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
			for p := range d.n.DHT.FindProvidersAsync(rctx, key, 0) {
				d.mu.Lock()
				skip := d.seen[p.ID] || d.n.banned(p.ID)
				d.seen[p.ID] = true
				d.mu.Unlock()
				if skip {
					continue
				}
				wg.Go(func() {
					s, err := d.n.peerSource(ctx, p)
					if err != nil {
						d.n.log.Debug("provider unreachable", "peer", p.ID, "err", err)
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

// Strikes: a peer that sent bad data is dropped from the fetch at once and
// not used again by this node for a while once it has a few strikes.
const (
	maxStrikes   = 3
	strikeMemory = time.Hour
)

type strikes struct {
	mu sync.Mutex
	m  map[peer.ID][]time.Time
}

func (n *Node) strike(p peer.ID) {
	if p == "" {
		return
	}
	n.strikes.mu.Lock()
	defer n.strikes.mu.Unlock()
	if n.strikes.m == nil {
		n.strikes.m = map[peer.ID][]time.Time{}
	}
	n.strikes.m[p] = append(n.strikes.m[p], time.Now())
}

func (n *Node) banned(p peer.ID) bool {
	n.strikes.mu.Lock()
	defer n.strikes.mu.Unlock()
	recent := 0
	for _, t := range n.strikes.m[p] {
		if time.Since(t) < strikeMemory {
			recent++
		}
	}
	return recent >= maxStrikes
}
