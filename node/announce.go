package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"

	"github.com/shoal-p2p/shoal/content"
)

// Announcing. A daemon provides each held root and its file keys on the
// DHTs, again every ReannounceInterval (provider records live 48 hours).
// A failed or partial announce is retried with a growing pause, from
// announceRetryMin up to the interval; everything is announced again at
// once when the routing tables go from empty to holding a peer, and when
// the node's addresses change.
const (
	announceRetryMin = 2 * time.Second
	announceParallel = 8
	announceTimeout  = time.Minute
	// recordsKey is the announcer's entry for re-putting kept publisher
	// records on the DHT.
	recordsKey = "records"
)

// announceState is where the announce of one root stands.
type announceState struct {
	Last  time.Time `json:"last_announced,omitzero"` // last complete announce
	Err   string    `json:"error,omitempty"`         // why the last attempt failed
	Next  time.Time `json:"next,omitzero"`
	fails int
	busy  bool // an announce is running
	again bool // asked for again while busy
}

// due marks the entry to be announced now.
func (st *announceState) due() {
	st.Next, st.fails = time.Time{}, 0
	if st.busy {
		st.again = true
	}
}

// announcer keeps what a daemon holds announced.
type announcer struct {
	n        *Node
	interval time.Duration
	kick     chan struct{}

	mu    sync.Mutex
	state map[string]*announceState // root CID string (or recordsKey) → state
}

// startAnnouncer starts announcing every held root and kept record now,
// and keeps them announced until the node closes.
func (n *Node) startAnnouncer(interval time.Duration) {
	a := &announcer{n: n, interval: interval, kick: make(chan struct{}, 1), state: map[string]*announceState{}}
	a.state[recordsKey] = &announceState{}
	if roots, err := n.Index.Roots(); err == nil {
		for _, r := range roots {
			a.state[r.Root.String()] = &announceState{}
		}
	}
	n.ann = a
	n.wg.Go(a.loop)
	n.wg.Go(a.watch)
}

// add schedules root to be announced now (and kept announced).
func (a *announcer) add(root cid.Cid) {
	a.mu.Lock()
	st := a.state[root.String()]
	if st == nil {
		st = &announceState{}
		a.state[root.String()] = st
	}
	st.due()
	a.mu.Unlock()
	a.poke()
}

// forget stops announcing roots this node no longer holds (their
// provider records expire on their own).
func (a *announcer) forget(roots []cid.Cid) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range roots {
		delete(a.state, r.String())
	}
}

// queue reports how many entries wait to be announced (due or running)
// and when an announce last succeeded.
func (a *announcer) queue() (pending int, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for _, st := range a.state {
		if st.busy || !st.Next.After(now) {
			pending++
		}
		if st.Last.After(last) {
			last = st.Last
		}
	}
	return pending, last
}

// all schedules everything to be announced now.
func (a *announcer) all(why string) {
	a.n.log.Debug("announcing everything again", "why", why)
	a.mu.Lock()
	for _, st := range a.state {
		st.due()
	}
	a.mu.Unlock()
	a.poke()
}

func (a *announcer) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// snapshot returns the state of every root (not the records entry).
func (a *announcer) snapshot() map[string]announceState {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]announceState, len(a.state))
	for k, st := range a.state {
		if k != recordsKey {
			out[k] = *st
		}
	}
	return out
}

func (a *announcer) loop() {
	ctx := a.n.ctx
	for {
		a.mu.Lock()
		now := time.Now()
		wake := now.Add(a.interval)
		var due []string
		for k, st := range a.state {
			if st.busy {
				continue
			}
			if !st.Next.After(now) {
				st.busy = true
				due = append(due, k)
			} else if st.Next.Before(wake) {
				wake = st.Next
			}
		}
		a.mu.Unlock()
		for _, k := range due {
			a.n.wg.Go(func() { a.run(ctx, k) })
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// run announces one entry and schedules its next round.
func (a *announcer) run(ctx context.Context, k string) {
	var err error
	if k == recordsKey {
		err = a.n.republish(ctx)
	} else {
		var root cid.Cid
		if root, err = cid.Decode(k); err == nil {
			err = a.n.Announce(ctx, root)
		}
	}
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.state[k]
	if st == nil {
		return // forgotten meanwhile
	}
	st.busy = false
	if st.again {
		// Asked for again meanwhile (new peers, new addresses, more
		// held): that round may not have covered it.
		st.again, st.Next = false, time.Time{}
		if err == nil {
			st.Last, st.Err, st.fails = time.Now(), "", 0
		}
		a.poke()
		return
	}
	if err == nil {
		st.Last, st.Err, st.fails = time.Now(), "", 0
		st.Next = st.Last.Add(a.interval)
		return
	}
	st.fails++
	st.Err = err.Error()
	pause := min(announceRetryMin<<min(st.fails-1, 20), a.interval)
	st.Next = time.Now().Add(pause)
	a.n.log.Info("announce failed; retrying", "what", k, "in", pause.Round(time.Second), "err", err)
	a.poke()
}

// watch announces everything again when the routing tables go from empty
// to holding a peer, and when the node's addresses change.
func (a *announcer) watch() {
	ctx := a.n.ctx
	sub, err := a.n.Host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		a.n.log.Warn("address events", "err", err)
		return
	}
	defer sub.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	empty := a.n.tableSize() == 0
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sub.Out():
			ev := e.(event.EvtLocalAddressesUpdated)
			if first {
				first = false // the addresses the host started with
				continue
			}
			if hasAddedAddr(ev) {
				a.all("addresses changed")
			}
		case <-tick.C:
			now := a.n.tableSize() == 0
			if empty && !now {
				a.all("routing table has peers")
			}
			empty = now
		}
	}
}

func hasAddedAddr(ev event.EvtLocalAddressesUpdated) bool {
	for _, u := range ev.Current {
		if u.Action == event.Added {
			return true
		}
	}
	return false
}

// errNoDHTPeers is why nothing can be announced yet.
var errNoDHTPeers = errors.New("no DHT peers yet: announced as soon as one connects")

// Announce provides a held root and its file keys on the DHTs.
func (n *Node) Announce(ctx context.Context, root cid.Cid) error {
	keys, err := n.Keys(root)
	if err != nil {
		return err
	}
	if n.tableSize() == 0 {
		for _, k := range keys {
			// Kept in this node's own provider store, so that peers
			// asking it directly learn of it.
			_ = n.provide(ctx, k)
		}
		return errNoDHTPeers
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, announceParallel)
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, announceTimeout)
			defer cancel()
			errs[i] = n.provide(pctx, k)
		})
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d keys not announced: %w", failed, len(keys), first)
	}
	return nil
}

// republish puts every kept, live publisher record on the DHT again (DHT
// nodes drop records after 36 hours).
func (n *Node) republish(ctx context.Context) error {
	var errs []error
	for _, s := range n.Index.Records() {
		if s.Live(time.Now()) != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, recordTimeout)
		if err := n.putValue(pctx, content.RecordKey(s.Key, s.Name), s.Envelope); err != nil {
			errs = append(errs, fmt.Errorf("republish %s/%s: %w", s.Key, s.Name, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}
