package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/shoal-p2p/shoal/content"
)

// scheduler hands chunks to the workers of every source. A chunk a source
// failed is never handed to that source again; a source that sent bad data
// or broke is dropped. The fetch fails when some chunk has been failed by
// every live source and no more sources can come.
type scheduler struct {
	mu        sync.Mutex
	pending   []*job // not yet tried, in order; taken from the front
	retry     []*job // failed by some source, or put back
	remaining int
	live      map[*source]bool
	all       []*source
	searching bool
	errv      error
	lastErr   error
	change    chan struct{} // closed and replaced on every change
	done      chan struct{} // closed when all chunks are in or the fetch failed
	closed    bool
}

func newScheduler(jobs []*job) *scheduler {
	s := &scheduler{pending: jobs, remaining: len(jobs), live: map[*source]bool{}, searching: true,
		change: make(chan struct{}), done: make(chan struct{})}
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
	if s.closed {
		return false
	}
	s.live[src] = true
	s.broadcast()
	return true
}

// take returns a job for src, or a channel to wait on, or neither when src
// has nothing more to do.
func (s *scheduler) take(src *source) (*job, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.live[src] {
		return nil, nil
	}
	for i, j := range s.retry {
		if !j.failed[src] {
			s.retry = append(s.retry[:i], s.retry[i+1:]...)
			return j, nil
		}
	}
	if len(s.pending) > 0 {
		j := s.pending[0]
		s.pending[0] = nil
		s.pending = s.pending[1:]
		return j, nil
	}
	return nil, s.change
}

func (s *scheduler) complete(*job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining--
	s.broadcast()
}

// putBack returns a job unfinished (the fetch is stopping).
func (s *scheduler) putBack(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retry = append(s.retry, j)
	s.broadcast()
}

// fail records that src could not deliver j; drop removes src from the
// fetch. It returns the fetch's error once the fetch cannot finish.
func (s *scheduler) fail(j *job, src *source, err error, drop bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.failed == nil {
		j.failed = map[*source]bool{}
	}
	j.failed[src] = true
	if drop {
		delete(s.live, src)
	}
	if s.lastErr == nil || errors.Is(err, content.ErrHashMismatch) {
		s.lastErr = err
	}
	s.retry = append(s.retry, j)
	s.check()
	s.broadcast()
	return s.errv
}

// searchDone records that no more sources will come.
func (s *scheduler) searchDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searching = false
	s.check()
	s.broadcast()
}

// check sets errv when some pending job can no longer be fetched.
func (s *scheduler) check() {
	if s.errv != nil || s.searching || s.remaining == 0 {
		return
	}
	if len(s.live) == 0 {
		s.errv = fmt.Errorf("every source failed (%v)", s.lastErr)
		if errors.Is(s.lastErr, content.ErrHashMismatch) {
			s.errv = fmt.Errorf("%w: every source sent bad data (%v)", ErrIntegrity, s.lastErr)
		}
		return
	}
	for _, j := range s.retry {
		stuck := true
		for src := range s.live {
			if !j.failed[src] {
				stuck = false
				break
			}
		}
		if !stuck {
			continue
		}
		switch {
		case errors.Is(s.lastErr, content.ErrHashMismatch):
			s.errv = fmt.Errorf("%w: no source sent a valid copy of chunk %s (%v)", ErrIntegrity, j.cid, s.lastErr)
		case s.lastErr != nil:
			s.errv = fmt.Errorf("no source could send chunk %s: %w", j.cid, s.lastErr)
		default:
			s.errv = fmt.Errorf("no source could send chunk %s", j.cid)
		}
		return
	}
}

func (s *scheduler) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errv
}

func (s *scheduler) active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// closeSources closes every source the fetch used.
func (s *scheduler) closeSources() {
	s.mu.Lock()
	all := s.all
	s.all = nil
	s.mu.Unlock()
	for _, src := range all {
		src.close()
	}
}
