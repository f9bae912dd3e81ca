package protocol

import (
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Warnings about what a peer asked are rate limited: a peer asking again
// and again for the chunks of a changed file would otherwise write a line
// per request.
const (
	// warnEvery is the least time between two warnings caused by one peer;
	// the warnings in between are counted and the count is reported with
	// the next one.
	warnEvery = time.Minute
	// warnPeers bounds the peers remembered; beyond it, peers share one
	// budget, so many peer IDs cannot flood the log either.
	warnPeers = 256
)

type warnState struct {
	last       time.Time
	suppressed int
}

// warnLimit logs at most one warning per peer per warnEvery.
type warnLimit struct {
	mu    sync.Mutex
	peers map[peer.ID]*warnState
}

// warn logs msg for p unless p caused a warning less than warnEvery ago,
// in which case it only counts it.
func (w *warnLimit) warn(log *slog.Logger, p peer.ID, msg string, args ...any) {
	now := time.Now()
	w.mu.Lock()
	if w.peers == nil {
		w.peers = map[peer.ID]*warnState{}
	}
	st := w.peers[p]
	if st == nil {
		if len(w.peers) >= warnPeers {
			for q, s := range w.peers {
				if now.Sub(s.last) >= warnEvery && s.suppressed == 0 {
					delete(w.peers, q)
				}
			}
		}
		if len(w.peers) >= warnPeers {
			p = "" // the shared budget of peers beyond the bound
			st = w.peers[p]
		}
		if st == nil {
			st = &warnState{}
			w.peers[p] = st
		}
	}
	if !st.last.IsZero() && now.Sub(st.last) < warnEvery {
		st.suppressed++
		w.mu.Unlock()
		return
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	w.mu.Unlock()
	args = append(args, "peer", p)
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
