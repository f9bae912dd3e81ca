package node

import (
	"errors"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// store is what the node serves: the index (everything held whole) and
// the fetches in progress (every chunk verified and written so far).
type store struct {
	idx *content.Index

	mu     sync.RWMutex
	active map[cid.Cid]*fetch
}

var _ protocol.Store = (*store)(nil)

func (s *store) register(f *fetch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		s.active = map[cid.Cid]*fetch{}
	}
	s.active[f.m.Root] = f
}

func (s *store) unregister(f *fetch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[f.m.Root] == f {
		delete(s.active, f.m.Root)
	}
}

func (s *store) fetches() []*fetch {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*fetch, 0, len(s.active))
	for _, f := range s.active {
		out = append(out, f)
	}
	return out
}

// Block serves a manifest block from the index or a fetch in progress.
func (s *store) Block(c cid.Cid) ([]byte, error) {
	b, err := s.idx.Block(c)
	if !errors.Is(err, content.ErrNotFound) {
		return b, err
	}
	for _, f := range s.fetches() {
		if b, ok := f.blocks[c]; ok {
			return b, nil
		}
	}
	return nil, content.ErrNotFound
}

// ReadChunk serves a chunk from a held file or from a fetch in progress.
func (s *store) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	b, err := s.idx.ReadChunk(c, buf)
	if err == nil {
		return b, nil
	}
	for _, f := range s.fetches() {
		if b, ok := f.readChunk(c, buf); ok {
			return b, nil
		}
	}
	return nil, err
}

// asked hears that peer p is fetching root: if this node is fetching it
// too, p becomes a source (a fetcher that asks us is one we can ask).
func (s *store) asked(p peer.ID, root cid.Cid) {
	s.mu.RLock()
	f := s.active[root]
	s.mu.RUnlock()
	if f != nil && f.disc != nil {
		f.disc.offer(p)
	}
}

// Records hands over the signed records kept for root.
func (s *store) Records(root cid.Cid) [][]byte {
	var out [][]byte
	for _, r := range s.idx.RecordsFor(root) {
		out = append(out, r.Envelope)
	}
	return out
}

// Have says which chunks of root this node holds.
func (s *store) Have(root cid.Cid) (protocol.HaveMap, error) {
	if _, err := s.idx.Root(root); err == nil {
		return protocol.HaveMap{Complete: true}, nil
	}
	s.mu.RLock()
	f := s.active[root]
	s.mu.RUnlock()
	if f == nil {
		return protocol.HaveMap{}, content.ErrNotFound
	}
	return f.haveMap(), nil
}
