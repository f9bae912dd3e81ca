package fetch

import (
	"errors"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// The engine is what the node serves: the index (everything held whole)
// and the fetches in progress (every chunk verified and written so far).
var _ protocol.Store = (*Engine)(nil)

func (e *Engine) register(f *fetch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.active[f.m.Root] = f
}

func (e *Engine) unregister(f *fetch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.active[f.m.Root] == f {
		delete(e.active, f.m.Root)
	}
}

func (e *Engine) fetches() []*fetch {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]*fetch, 0, len(e.active))
	for _, f := range e.active {
		out = append(out, f)
	}
	return out
}

// Running is a fetch in progress.
type Running struct {
	Root  cid.Cid
	Dir   string
	Done  int64 // bytes verified and written
	Total int64
}

// Running lists the fetches in progress.
func (e *Engine) Running() []Running {
	var out []Running
	for _, f := range e.fetches() {
		out = append(out, Running{Root: f.m.Root, Dir: f.dir, Done: f.done.Load(), Total: f.m.Size()})
	}
	return out
}

// Block serves a manifest block from the index or a fetch in progress.
func (e *Engine) Block(c cid.Cid) ([]byte, error) {
	b, err := e.idx.Block(c)
	if !errors.Is(err, content.ErrNotFound) {
		return b, err
	}
	for _, f := range e.fetches() {
		if b, ok := f.blocks[c]; ok {
			return b, nil
		}
	}
	return nil, content.ErrNotFound
}

// ReadChunk serves a chunk from a held file or from a fetch in progress.
func (e *Engine) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	b, err := e.idx.ReadChunk(c, buf)
	if err == nil {
		return b, nil
	}
	for _, f := range e.fetches() {
		if b, ok := f.readChunk(c, buf); ok {
			return b, nil
		}
	}
	return nil, err
}

// Asked hears that peer p is fetching root: if this node is fetching it
// too, p becomes a source (a fetcher that asks us is one we can ask).
func (e *Engine) Asked(p peer.ID, root cid.Cid) {
	e.mu.RLock()
	f := e.active[root]
	e.mu.RUnlock()
	if f != nil && f.disc != nil {
		f.disc.offer(p)
	}
}

// Records hands over the signed records kept for root.
func (e *Engine) Records(root cid.Cid) [][]byte {
	var out [][]byte
	for _, r := range e.idx.RecordsFor(root) {
		out = append(out, r.Envelope)
	}
	return out
}

// Have says which chunks of root this node holds.
func (e *Engine) Have(root cid.Cid) (protocol.HaveMap, error) {
	if ri, err := e.idx.Root(root); err == nil && ri.Servable() {
		return protocol.HaveMap{Complete: true}, nil
	}
	e.mu.RLock()
	f := e.active[root]
	e.mu.RUnlock()
	if f == nil {
		return protocol.HaveMap{}, content.ErrNotFound
	}
	return f.haveMap(), nil
}
