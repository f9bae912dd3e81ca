package fetch

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// End game: when nothing untried is left, a chunk in flight for longer
// than raceAfter is asked of up to maxRacers sources at once.
const (
	maxRacers = 3
	raceAfter = time.Second
	// rareLook is how many untried chunks take looks through for one no
	// other source holds.
	rareLook = 64
)

// job is one distinct chunk to fetch and every place it goes.
type job struct {
	cid      cid.Cid
	len      int
	targets  []target
	idx      []int // indices in the manifest's chunk list
	order    uint64
	rarity   int
	taken    bool // handed out from the pending list
	claimed  bool // a verified copy is being written
	done     bool
	inRetry  bool
	failed   map[*source]bool
	inflight map[*source]bool
	started  time.Time // when the oldest request in flight was sent
}

// scheduler hands chunks to the workers of every source: untried chunks
// rarest first (ties in a random order of this fetch's own, so a crowd of
// fetchers asks a seeder for different chunks), chunks that failed
// somewhere to other sources, and in the end game the chunks still in
// flight to a second and third source so one slow peer cannot hold up the
// finish. A chunk a source failed is never handed to it again; a source
// that sent bad data or broke is dropped.
type scheduler struct {
	mu        sync.Mutex
	pending   []*job // untried, in order; entries before head are taken
	head      int
	retry     []*job
	inflight  map[*job]bool
	remaining int
	live      map[*source]bool
	st        map[*source]*srcState // every source added, live or not
	whyFailed map[*source]error     // each source's last failure
	all       []*source
	local     *source // this node's index, if a source
	exhausted bool    // the last discovery round found no new source
	errv      error
	lastErr   error
	change    chan struct{} // closed and replaced on every change
	done      chan struct{} // closed when all chunks are in or the fetch failed
	closed    bool
}

// srcState is what the scheduler keeps of a source, under its mutex.
type srcState struct {
	hm       protocol.HaveMap
	inflight int // requests outstanding
	limit    int // requests allowed outstanding (0: the source's workers)
}

func newScheduler(jobs []*job) *scheduler {
	s := &scheduler{remaining: len(jobs), live: map[*source]bool{}, st: map[*source]*srcState{}, inflight: map[*job]bool{},
		change: make(chan struct{}), done: make(chan struct{})}
	for _, j := range jobs {
		if j.done {
			s.remaining--
			continue
		}
		j.order = rand.Uint64()
		s.pending = append(s.pending, j)
	}
	sort.Slice(s.pending, func(a, b int) bool { return s.pending[a].order < s.pending[b].order })
	if s.remaining == 0 {
		close(s.done)
		s.closed = true
	}
	return s
}

func (s *scheduler) broadcast() {
	close(s.change)
	s.change = make(chan struct{})
	if !s.closed && (s.remaining == 0 || s.errv != nil) {
		s.closed = true
		close(s.done)
	}
}

// addSource registers a source; false means the fetch is over.
func (s *scheduler) addSource(src *source) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, src)
	st := &srcState{}
	switch {
	case src.conn == nil && src.have != nil:
		st.hm = *src.have // this node's index, some of the model
		s.local = src
	case src.conn == nil:
		st.hm = protocol.HaveMap{Complete: true} // this node's index
		s.local = src
	default:
		st.limit = startInFlight
	}
	s.st[src] = st
	if s.closed {
		return false
	}
	s.live[src] = true
	s.exhausted = false
	s.broadcast()
	return true
}

// setHave updates a source's have-map.
func (s *scheduler) setHave(src *source, hm protocol.HaveMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st[src].hm = hm
	s.broadcast()
}

// roundDone records the outcome of a discovery round.
func (s *scheduler) roundDone(foundNew bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exhausted = !foundNew
	s.check(true)
	s.broadcast()
}

// take returns a job for src, or a channel to wait on, or neither when src
// has nothing more to do.
func (s *scheduler) take(src *source) (*job, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.live[src] {
		return nil, nil
	}
	st := s.st[src]
	if st.limit > 0 && st.inflight >= st.limit {
		return nil, s.change
	}
	for i, j := range s.retry {
		if !j.failed[src] && !j.inflight[src] && st.has(src, j) {
			s.retry = append(s.retry[:i], s.retry[i+1:]...)
			j.inRetry = false
			return s.start(j, src), nil
		}
	}
	// Untried chunks in rarity order. Among the first few, prefer one no
	// other live source holds: what others have should come from them,
	// and this source's bandwidth go to what only it has.
	untried, pick, looked := false, -1, 0
	for k := s.head; k < len(s.pending) && looked < rareLook; k++ {
		j := s.pending[k]
		if j.taken {
			if k == s.head {
				s.head++
			}
			continue
		}
		untried = true
		if !st.has(src, j) || s.localHas(src, j) {
			continue
		}
		looked++
		if pick < 0 {
			pick = k
		}
		if !s.heldElsewhere(j, src) {
			pick = k
			break
		}
	}
	if pick >= 0 {
		j := s.pending[pick]
		j.taken = true
		if pick == s.head {
			s.head++
		}
		return s.start(j, src), nil
	}
	if !untried {
		// End game: race a chunk in flight elsewhere for a while, the
		// least raced one.
		var best *job
		now := time.Now()
		for j := range s.inflight {
			if len(j.inflight) < maxRacers && now.Sub(j.started) > raceAfter && !j.inflight[src] && !j.failed[src] && st.has(src, j) &&
				(best == nil || len(j.inflight) < len(best.inflight)) {
				best = j
			}
		}
		if best != nil {
			return s.start(best, src), nil
		}
	}
	return nil, s.change
}

// localHas reports whether this node's index holds j, when src is a
// peer: a chunk held here is copied, not fetched (unless copying it
// failed, and it is retried).
func (s *scheduler) localHas(src *source, j *job) bool {
	l := s.local
	return src.conn != nil && l != nil && s.live[l] && s.st[l].has(l, j)
}

// heldElsewhere reports whether a live source other than src holds j or
// is about to.
func (s *scheduler) heldElsewhere(j *job, src *source) bool {
	for o := range s.live {
		if o != src && (s.st[o].has(o, j) || s.st[o].soon(j)) {
			return true
		}
	}
	return false
}

// coming returns the bits of the chunk references in flight, for this
// fetch's have-map.
func (s *scheduler) coming(n int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, (n+7)/8)
	for j := range s.inflight {
		for _, i := range j.idx {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

func (s *scheduler) start(j *job, src *source) *job {
	if j.inflight == nil {
		j.inflight = map[*source]bool{}
	}
	if len(j.inflight) == 0 {
		j.started = time.Now()
	}
	j.inflight[src] = true
	s.st[src].inflight++
	s.inflight[j] = true
	return j
}

// stop records that src's request for j ended.
func (s *scheduler) stop(j *job, src *source) {
	if j.inflight[src] {
		delete(j.inflight, src)
		s.st[src].inflight--
	}
}

// pace sets how many requests src may have outstanding.
func (s *scheduler) pace(src *source, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.st[src]; limit != st.limit {
		st.limit = limit
		s.broadcast()
	}
}

// claim lets exactly one verified copy of j be written.
func (s *scheduler) claim(j *job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.done || j.claimed {
		return false
	}
	j.claimed = true
	return true
}

// lost records that src's copy of j was not needed.
func (s *scheduler) lost(j *job, src *source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop(j, src)
	s.broadcast()
}

// complete records j as delivered by src. It returns false when another
// source delivered it first (the bytes are then not needed).
func (s *scheduler) complete(j *job, src *source) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop(j, src)
	if j.done {
		s.broadcast()
		return false
	}
	j.done = true
	delete(s.inflight, j)
	s.remaining--
	s.broadcast()
	return true
}

// release returns a job src gave up on without a verdict (the fetch is
// stopping).
func (s *scheduler) release(j *job, src *source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requeue(j, src)
	s.broadcast()
}

func (s *scheduler) requeue(j *job, src *source) {
	s.stop(j, src)
	if j.done || len(j.inflight) > 0 {
		return
	}
	delete(s.inflight, j)
	if !j.inRetry {
		j.inRetry = true
		s.retry = append(s.retry, j)
	}
}

// fail records that src could not deliver j; drop removes src from the
// fetch. It reports whether this call dropped src (and not an earlier
// one), and returns the fetch's error once the fetch cannot finish.
func (s *scheduler) fail(j *job, src *source, err error, drop bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.failed == nil {
		j.failed = map[*source]bool{}
	}
	j.failed[src] = true
	dropped := drop && s.live[src]
	if drop {
		delete(s.live, src)
	}
	if s.lastErr == nil || errors.Is(err, content.ErrHashMismatch) {
		s.lastErr = fmt.Errorf("peer %s: %w", src.name, err)
	}
	if s.whyFailed == nil {
		s.whyFailed = map[*source]error{}
	}
	s.whyFailed[src] = err
	s.requeue(j, src)
	s.check(false)
	s.broadcast()
	return dropped, s.errv
}

// check sets errv when the fetch cannot finish: no more sources are coming
// and either none is left or some chunk can come from none of those left.
// full also looks at the untried chunks (a longer scan, done once a
// discovery round ends rather than on every failure).
func (s *scheduler) check(full bool) {
	if s.errv != nil || !s.exhausted || s.remaining == 0 {
		return
	}
	integrity := errors.Is(s.lastErr, content.ErrHashMismatch)
	if len(s.live) == 0 {
		s.errv = fmt.Errorf("%w: every source failed; %s", ErrNoSource, s.failedPeers())
		if integrity {
			s.errv = fmt.Errorf("%w: every source sent bad data (last: %v)", ErrIntegrity, s.lastErr)
		}
		return
	}
	jobs := s.retry
	if full {
		jobs = append(append([]*job(nil), s.retry...), s.pending[s.head:]...)
	}
	for _, j := range jobs {
		if j.done || j.taken && !j.inRetry || s.supplied(j) {
			continue
		}
		switch {
		case integrity && len(j.failed) > 0:
			s.errv = fmt.Errorf("%w: no source sent a valid copy of chunk %s (last: %v)", ErrIntegrity, j.cid, s.lastErr)
		case len(j.failed) > 0:
			s.errv = fmt.Errorf("%w: chunk %s; %s", ErrNoSource, j.cid, s.failedPeers())
		default:
			s.errv = fmt.Errorf("%w: chunk %s is held by none of the %d sources found", ErrNoSource, j.cid, len(s.live))
		}
		return
	}
}

// failedPeers names the peers that claimed the model and failed, and why
// (at most five). Called with s.mu held.
func (s *scheduler) failedPeers() string {
	var parts []string
	for _, src := range s.all {
		if err := s.whyFailed[src]; err != nil && len(parts) < 5 {
			parts = append(parts, fmt.Sprintf("%s (%v)", src.name, err))
		}
	}
	if n := len(s.whyFailed); n > len(parts) {
		parts = append(parts, fmt.Sprintf("and %d more", n-len(parts)))
	}
	return "the peers that claimed it and failed: " + strings.Join(parts, ", ")
}

// supplied reports whether some live source may still deliver j: one that
// has not failed it and either holds it or is a partial holder of the root
// that may get it later.
func (s *scheduler) supplied(j *job) bool {
	for src := range s.live {
		if j.failed[src] {
			continue
		}
		if st := s.st[src]; st.has(src, j) || (src.files == nil && !st.hm.Complete && src.conn != nil) {
			return true
		}
	}
	return false
}

// stall fails the fetch: nothing has arrived for too long.
func (s *scheduler) stall(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errv == nil {
		s.errv = err
	}
	s.broadcast()
}

// resort orders the untried chunks rarest first: by how many live sources
// hold each, ties in this fetch's random order.
func (s *scheduler) resort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	rest := s.pending[:0]
	for _, j := range s.pending[s.head:] {
		if j.taken {
			continue
		}
		j.rarity = 0
		for src := range s.live {
			if s.st[src].has(src, j) || s.st[src].soon(j) {
				j.rarity++
			}
		}
		rest = append(rest, j)
	}
	clear(s.pending[len(rest):])
	s.pending, s.head = rest, 0
	sort.SliceStable(s.pending, func(a, b int) bool {
		x, y := s.pending[a], s.pending[b]
		if x.rarity != y.rarity {
			return x.rarity < y.rarity
		}
		return x.order < y.order
	})
}

// firstMissing names a chunk not yet in, for a stall message.
func (s *scheduler) firstMissing() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range append(append([]*job(nil), s.retry...), s.pending[s.head:]...) {
		if !j.done {
			return j.cid.String()
		}
	}
	return "?"
}

func (s *scheduler) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errv
}

// active counts the peers this fetch is using: those asked for chunks now
// or that have delivered some (a file-key provider holding only a small
// file nobody needs from it is not one).
func (s *scheduler) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for src := range s.live {
		if src.conn != nil && (s.st[src].inflight > 0 || src.chunks.Load() > 0) {
			n++
		}
	}
	return n
}

func (s *scheduler) sources() []*source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*source(nil), s.all...)
}

// closeSources closes every source the fetch used.
func (s *scheduler) closeSources() {
	for _, src := range s.sources() {
		src.close()
	}
}

// has reports whether the source (src, whose state st is) is believed to
// hold j. Called with the scheduler's mutex held.
func (st *srcState) has(src *source, j *job) bool {
	if src.files != nil {
		for _, t := range j.targets {
			if src.files[t.file.idx] {
				return true
			}
		}
		return false
	}
	if st.hm.Complete {
		return true
	}
	for _, i := range j.idx {
		if st.hm.Has(i) {
			return true
		}
	}
	return false
}

// soon reports whether the source, itself fetching, has asked for j.
// Called with the scheduler's mutex held.
func (st *srcState) soon(j *job) bool {
	for _, i := range j.idx {
		if st.hm.Soon(i) {
			return true
		}
	}
	return false
}
