package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

// seeders starts a bootstrap node and k seeders of one model (seeded
// from seed), each with cfg, and returns the bootstrap address, the
// seeders and the model's folder and manifest.
func seeders(t *testing.T, k int, mib int64, cfg func(*home.Config)) (string, []*Node, string, *Added) {
	t.Helper()
	ctx := ctxT(t)
	boot := newTestNode(t)
	addr := boot.Addrs()[0].String()
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, mib, 11); err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	var res *Added
	for range k {
		c := testConfig(addr)
		if cfg != nil {
			cfg(&c)
		}
		n := newTestNodeCfg(t, c)
		r, err := n.Add(ctx, model, content.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res = r
		nodes = append(nodes, n)
	}
	return addr, nodes, model, res
}

// strikesOf counts the strikes n holds against p.
func strikesOf(n, p *Node) int {
	n.strikes.mu.Lock()
	defer n.strikes.mu.Unlock()
	return len(n.strikes.m[p.Host.ID()])
}

func peersUsed(res *GetResult) map[string]int64 {
	m := map[string]int64{}
	for _, s := range res.Sources {
		m[s.Peer] = s.Chunks
	}
	return m
}

// Four seeders, one fetcher: every seeder sends part of the model.
func TestFourSeedersAllUsed(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 4, 24, nil)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	used := peersUsed(res)
	for _, s := range seeds {
		if used[s.Host.ID().String()] == 0 {
			t.Errorf("seeder %s sent nothing; sources: %+v", s.Host.ID(), res.Sources)
		}
	}
}

// corruptStore serves through another store and flips a byte in every
// n-th chunk it sends.
type corruptStore struct {
	protocol.Store
	n     int64
	count atomic.Int64
}

func (c *corruptStore) ReadChunk(id cid.Cid, buf []byte) ([]byte, error) {
	b, err := c.Store.ReadChunk(id, buf)
	if err == nil && c.count.Add(1)%c.n == 0 {
		b[len(b)/2] ^= 0x40
	}
	return b, err
}

// Threat 1: three providers, one flips a byte in some chunks: the fetch
// ends with the right bytes, and the bad peer is dropped and struck.
func TestBadPeerAmongGood(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 3, 16, nil)
	bad := seeds[0]
	srv := &protocol.Server{Store: &corruptStore{Store: bad.fetcher, n: 3}}
	bad.Host.SetStreamHandler(protocol.ID, srv.Handle)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if res.Refetch == 0 {
		t.Fatal("no chunk was re-fetched: the bad peer was never asked")
	}
	if n := strikesOf(fetcher, bad); n != 1 {
		t.Fatalf("bad peer has %d strikes, want 1 (dropped at its first bad chunk)", n)
	}
}

// A seeder killed mid-fetch: the fetch completes from the others.
func TestSeederKilledMidFetch(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 3, 24, func(c *home.Config) { c.MaxUpload = "4MB/s" })
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	var once sync.Once
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{Progress: func(p fetch.Progress) {
		if p.Phase == "fetching" && p.Done > 0 {
			once.Do(func() { seeds[1].Close() })
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	t.Logf("sources: %+v", res.Sources)
}

// Resume: a fetch cancelled halfway, run again, moves only the rest.
func TestResumeAfterCancel(t *testing.T) {
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 24, func(c *home.Config) { c.MaxUpload = "8MB/s" })
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	cctx, cancel := context.WithCancel(ctx)
	_, err := fetcher.Get(cctx, im.M.Root, out, GetOptions{Progress: func(p fetch.Progress) {
		if p.Total > 0 && p.Done > p.Total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: err = %v", err)
	}
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if distinct := int64(im.M.Distinct()); res.Resumed < distinct/3 || res.Chunks+res.Resumed != distinct {
		t.Fatalf("second run moved %d and resumed %d of %d chunks", res.Chunks, res.Resumed, distinct)
	}
}

// A seeder whose file changed on disk after add (new mtime) refuses to
// serve it; the fetch gets those chunks from another seeder.
func TestChangedFileNeverServed(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 1, 8, nil)
	// A second seeder holds a copy that is then edited in place.
	other := newTestNode(t, addr)
	cp := filepath.Join(t.TempDir(), "model")
	copyTree(t, model, cp)
	if _, err := other.Add(ctx, cp, content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(cp, "model.safetensors")
	corrupt(t, p, 3<<20)
	touch(t, p)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	// Alone, the edited seeder cannot complete a fetch.
	seeds[0].Close()
	fetcher.Close()
	fetcher2 := newTestNode(t, addr)
	fetcher2.cfg.FindTimeout = home.Duration(3 * time.Second)
	if _, err := fetcher2.Get(ctx, im.M.Root, filepath.Join(t.TempDir(), "out"), GetOptions{}); err == nil {
		t.Fatal("fetched a model whose only holder changed it")
	}
}

// Partial holders serve: fetchers that start together from one slow
// seeder trade chunks among themselves.
func TestCrowdServesItself(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 1, 16, func(c *home.Config) { c.MaxUpload = "6MB/s" })
	var fetchers []*Node
	for range 3 {
		fetchers = append(fetchers, newTestNode(t, addr))
	}
	results := make([]*GetResult, len(fetchers))
	errs := make([]error, len(fetchers))
	var wg sync.WaitGroup
	for i, f := range fetchers {
		wg.Go(func() {
			results[i], errs[i] = f.Get(ctx, im.M.Root, filepath.Join(t.TempDir(), "out"), GetOptions{})
		})
	}
	wg.Wait()
	traded := int64(0)
	for i, r := range results {
		if r != nil {
			t.Logf("fetcher %d: %s, sources %+v", i, r.Elapsed, r.Sources)
		}
	}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		sameTree(t, model, r.Dir)
		for _, s := range r.Sources {
			if s.Peer != seeds[0].Host.ID().String() {
				traded += s.Chunks
			}
		}
	}
	if traded == 0 {
		t.Fatal("no fetcher got a chunk from another fetcher")
	}
	t.Logf("chunks traded among fetchers: %d", traded)
}

// Threat 7: one peer opens 10,000 streams: the resource manager refuses
// the excess, and an honest fetch at the same time still finishes.
func TestStreamFlood(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 1, 8, nil)
	seed := seeds[0]
	flooder := newTestNode(t, addr)
	if err := flooder.Host.Connect(ctx, peer.AddrInfo{ID: seed.Host.ID(), Addrs: seed.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		var held []network.Stream
		defer func() {
			for _, s := range held {
				s.Reset()
			}
		}()
		// Within half the server's idle timeout, so no stream held here
		// is closed as idle meanwhile (a slot freed that way may be
		// taken again, and the count would no longer be of streams open
		// at once).
		start := time.Now()
		for i := 0; i < 10000 && time.Since(start) < protocol.DefaultIdleTimeout/2; i++ {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := flooder.Host.NewStream(sctx, seed.Host.ID(), protocol.ID)
			cancel()
			if err != nil {
				continue
			}
			// Negotiation is lazy: a write and a read show whether the
			// seeder accepted the stream.
			s.SetDeadline(time.Now().Add(2 * time.Second))
			req := protocol.AppendRequest(nil, protocol.KindHave, 1, im.M.Root)
			if _, err := s.Write(append([]byte{byte(len(req))}, req...)); err == nil {
				if _, err := s.Read(make([]byte, 1)); err == nil {
					opened.Add(1)
					held = append(held, s)
					continue
				}
			}
			s.Reset()
		}
	}()
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	<-floodDone
	if n := opened.Load(); n > maxInboundPerPeer {
		t.Fatalf("flooder got %d streams accepted, limit %d", n, maxInboundPerPeer)
	} else if n == 0 {
		t.Fatal("flooder got no stream at all: the test shows nothing")
	}
}

// Threat 8: a peer that never answers is timed out and its work goes to
// others.
func TestSilentPeerTimedOut(t *testing.T) {
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 8, nil)
	silent := newTestNode(t, addr)
	silent.Host.SetStreamHandler(protocol.ID, func(s network.Stream) {
		// Answer have-map requests as a full holder, then go quiet.
		srv := &protocol.Server{Store: silentStore{root: im.M.Root}}
		srv.Handle(s)
	})
	if err := silent.provide(ctx, im.M.Root); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(addr)
	cfg.RequestTimeout = home.Duration(time.Second)
	fetcher := newTestNodeCfg(t, cfg)
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if peersUsed(res)[silent.Host.ID().String()] != 0 {
		t.Fatal("the silent peer delivered chunks")
	}
}

// silentStore claims every chunk of root and never sends one.
type silentStore struct{ root cid.Cid }

func (s silentStore) Block(c cid.Cid) ([]byte, error) { return nil, content.ErrNotFound }
func (s silentStore) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	time.Sleep(time.Hour)
	return nil, content.ErrNotFound
}
func (s silentStore) Records(cid.Cid) [][]byte { return nil }
func (s silentStore) Have(root cid.Cid) (protocol.HaveMap, error) {
	return protocol.HaveMap{Complete: true}, nil
}

// swapStore answers every chunk request with one fixed, valid chunk of
// another model.
type swapStore struct {
	protocol.Store
	other []byte
}

func (s swapStore) ReadChunk(id cid.Cid, buf []byte) ([]byte, error) {
	return buf[:copy(buf, s.other)], nil
}

// Threat 3: a valid chunk of another model sent in place of the one asked
// for is refused and counted as a strike.
func TestChunkOfAnotherModelRefused(t *testing.T) {
	ctx := ctxT(t)
	// Capped seeders, so that the fetch certainly asks both.
	addr, seeds, model, im := seeders(t, 2, 8, func(c *home.Config) { c.MaxUpload = "4MB/s" })
	liar := seeds[0]
	other := testmodel.Bytes(1<<20, 99) // a whole, valid chunk of something else
	srv := &protocol.Server{Store: swapStore{Store: liar.fetcher, other: other}}
	liar.Host.SetStreamHandler(protocol.ID, srv.Handle)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if n := strikesOf(fetcher, liar); n != 1 {
		t.Fatalf("the peer that swapped chunks has %d strikes, want 1", n)
	}
}

// gateStore serves through another store, but holds every chunk back
// until open is closed (or a minute has passed); asked is closed at the
// first chunk asked for.
type gateStore struct {
	protocol.Store
	once        sync.Once
	asked, open chan struct{}
}

func (g *gateStore) ReadChunk(id cid.Cid, buf []byte) ([]byte, error) {
	g.once.Do(func() { close(g.asked) })
	select {
	case <-g.open:
	case <-time.After(time.Minute):
	}
	return g.Store.ReadChunk(id, buf)
}

// Two gets into one folder at once: the second is refused at once,
// naming the process whose fetch holds the folder; the first completes,
// and its lock goes with it.
func TestSecondGetIntoFolderRefused(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 1, 4, nil)
	gate := &gateStore{Store: seeds[0].fetcher, asked: make(chan struct{}), open: make(chan struct{})}
	seeds[0].Host.SetStreamHandler(protocol.ID, (&protocol.Server{Store: gate}).Handle)
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	first := make(chan error, 1)
	go func() {
		_, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
		first <- err
	}()
	select {
	case <-gate.asked: // the first fetch has prepared its folder
	case err := <-first:
		t.Fatalf("first get ended before asking for a chunk: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the first get asked for no chunk")
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := fetcher.Get(sctx, im.M.Root, out, GetOptions{})
	cancel()
	close(gate.open)
	if !errors.Is(err, fetch.ErrFolderBusy) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Errorf("second get into the folder: %v; want %v naming process %d", err, fetch.ErrFolderBusy, os.Getpid())
	}
	if err := <-first; err != nil {
		t.Fatalf("first get: %v", err)
	}
	sameTree(t, model, out)
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatalf("get after the first completed: %v", err)
	}
}

// Threat 2: every provider sends corrupt chunks: the fetch ends with a
// clear error, no file at its final path holds a byte it should not,
// and what was verified is kept for a later run.
func TestEveryProviderCorrupt(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 2, 6, nil)
	for _, s := range seeds {
		srv := &protocol.Server{Store: &corruptStore{Store: s.fetcher, n: 2}}
		s.Host.SetStreamHandler(protocol.ID, srv.Handle)
	}
	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	_, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	t.Logf("ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, fetch.ErrIntegrity) && !errors.Is(err, fetch.ErrNoSource) {
		t.Fatalf("err = %v, want an integrity error", err)
	}
	for _, s := range seeds {
		if strikesOf(fetcher, s) == 0 {
			t.Errorf("seeder %s not struck", s.Host.ID())
		}
	}
	// A file at its final name is the model's own bytes.
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, content.StateDirName) || strings.HasSuffix(p, content.PartialExt) {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		want, _ := os.ReadFile(filepath.Join(model, rel))
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s at its final name with wrong bytes", rel)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(out, content.StateDirName)); err != nil {
		t.Errorf("verified part not kept for resume: %v", err)
	}
}
