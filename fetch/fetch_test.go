package fetch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

// fakeNet is a network of in-memory peers, each serving an engine's store:
// the fetch engine over no libp2p at all.
type fakeNet struct {
	self  peer.ID
	peers map[peer.ID]protocol.Store
	// providers lists who provides what; every peer provides every key
	// when nil.
	mu      sync.Mutex
	strikes map[peer.ID]int
	// dialDelay is how long a dial takes.
	dialDelay time.Duration
	// fallback serves a peer not in peers (nil: unreachable).
	fallback protocol.Store
}

func (n *fakeNet) Self() peer.ID                          { return n.self }
func (n *fakeNet) PeerInfo(p peer.ID) peer.AddrInfo       { return peer.AddrInfo{ID: p} }
func (n *fakeNet) Provide(context.Context, cid.Cid) error { return nil }
func (n *fakeNet) Banned(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.strikes[p] >= 3
}
func (n *fakeNet) Strike(p peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.strikes[p]++
}
func (n *fakeNet) ExchangePeers(context.Context, func(peer.ID)) []peer.ID { return nil }

func (n *fakeNet) FindProviders(ctx context.Context, key cid.Cid) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, len(n.peers))
	for p, st := range n.peers {
		if _, err := st.Have(key); err == nil || key.Type() == content.CodecRaw {
			out <- peer.AddrInfo{ID: p}
		}
	}
	close(out)
	return out
}

func (n *fakeNet) Dial(_ context.Context, p peer.AddrInfo) (Conn, bool, error) {
	time.Sleep(n.dialDelay)
	st, ok := n.peers[p.ID]
	if !ok && n.fallback != nil {
		st, ok = n.fallback, true
	}
	if !ok {
		return nil, false, errors.New("no such peer")
	}
	return storeConn{st}, false, nil
}

// storeConn answers requests straight from a store.
type storeConn struct{ st protocol.Store }

func (c storeConn) Get(ctx context.Context, k cid.Cid, max int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if k.Type() == content.CodecDagCBOR {
		return c.st.Block(k)
	}
	return c.st.ReadChunk(k, make([]byte, max))
}
func (c storeConn) Have(_ context.Context, root cid.Cid) (protocol.HaveMap, error) {
	return c.st.Have(root)
}
func (c storeConn) Records(ctx context.Context, root cid.Cid) ([][]byte, error) {
	if st, ok := c.st.(recordStaller); ok {
		return st.stallRecords(ctx)
	}
	return nil, nil
}

// recordStaller is a store whose records requests never answer.
type recordStaller interface {
	stallRecords(ctx context.Context) ([][]byte, error)
}

func (c storeConn) Close() error { return nil }

// seeded returns a fake network with one seeder holding a model of mib
// MiB, an engine to fetch with, and the model's folder and root.
func seeded(t *testing.T, mib int64) (*Engine, string, cid.Cid) {
	t.Helper()
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, mib, 1); err != nil {
		t.Fatal(err)
	}
	e, root := seededWith(t, model)
	return e, model, root
}

func openIndex(t *testing.T) *content.Index {
	t.Helper()
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx
}

func sameFiles(t *testing.T, want, got string) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs (%v)", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A fetch over the fake network writes the model byte for byte, and a
// second Get into the same folder finds it held.
func TestEngineGet(t *testing.T) {
	e, model, root := seeded(t, 3)
	out := filepath.Join(t.TempDir(), "out")
	res, err := e.Get(context.Background(), root, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, model, out)
	if res.Peers != 1 || res.Held {
		t.Errorf("result %+v", res)
	}
	again, err := e.Get(context.Background(), root, out, Options{})
	if err != nil || !again.Held {
		t.Fatalf("second get: %+v %v", again, err)
	}
}

// Threat 18: each fetched file is fsynced under its temporary name, then
// renamed, then its folder is fsynced, all before Get reports success.
func TestDurableOrder(t *testing.T) {
	e, _, root := seeded(t, 2)
	var mu sync.Mutex
	var steps []string
	durableTrace = func(op, path string) {
		mu.Lock()
		steps = append(steps, op+" "+filepath.ToSlash(path))
		mu.Unlock()
	}
	defer func() { durableTrace = nil }()
	res, err := e.Get(context.Background(), root, filepath.Join(t.TempDir(), "out"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	pos := map[string]int{}
	for i, s := range steps {
		pos[s] = i + 1
	}
	for _, f := range res.Manifest.Files {
		dir := filepath.ToSlash(filepath.Dir(f.Path))
		s, r, d := pos["sync "+f.Path+content.PartialExt], pos["rename "+f.Path], pos["syncdir "+dir]
		if s == 0 || r == 0 || d == 0 || !(s < r && r < d) {
			t.Errorf("%s: sync at %d, rename at %d, folder sync at %d; steps:\n%s", f.Path, s, r, d, strings.Join(steps, "\n"))
		}
	}
}

// A plain fetch reads nothing back to hash whole files: every chunk was
// verified against its CID as it arrived. WholeFile asks for the pass,
// and a file whose chunks a resume took on the log's word gets it too
// (see node's resume tests).
func TestWholeFilePassOnlyWhenAsked(t *testing.T) {
	var mu sync.Mutex
	var read int64
	hashTrace = func(_ string, n int64) {
		mu.Lock()
		read += n
		mu.Unlock()
	}
	defer func() { hashTrace = nil }()
	e, model, root := seeded(t, 2)
	out := filepath.Join(t.TempDir(), "out")
	res, err := e.Get(context.Background(), root, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, model, out)
	if read != 0 {
		t.Errorf("a plain fetch read back %d bytes to hash", read)
	}
	e2, _, root2 := seeded(t, 2)
	out2 := filepath.Join(t.TempDir(), "out")
	if _, err := e2.Get(context.Background(), root2, out2, Options{WholeFile: true}); err != nil {
		t.Fatal(err)
	}
	if read != res.Size {
		t.Errorf("WholeFile read back %d bytes, the model has %d", read, res.Size)
	}
}

// slowStore serves chunks after a pause, so a fetch is still running when
// a test cancels it.
type slowStore struct {
	protocol.Store
	pause time.Duration
}

func (s slowStore) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	time.Sleep(s.pause)
	return s.Store.ReadChunk(c, buf)
}

// No goroutine a fetch starts outlives Get: not after a fetch that
// completes, nor after one cancelled while chunks are moving.
func TestGetLeavesNoGoroutines(t *testing.T) {
	leakcheck.Check(t)
	e, _, root := seeded(t, 3)
	if _, err := e.Get(context.Background(), root, filepath.Join(t.TempDir(), "out"), Options{}); err != nil {
		t.Fatal(err)
	}
	e2, _, root2 := seeded(t, 3)
	net := e2.net.(*fakeNet)
	net.peers["seeder"] = slowStore{Store: net.peers["seeder"], pause: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	moving := make(chan struct{})
	var once sync.Once
	defer cancel()
	go func() {
		select {
		case <-moving:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := e2.Get(ctx, root2, filepath.Join(t.TempDir(), "out"), Options{Progress: func(p Progress) {
		if p.Phase == "fetching" {
			once.Do(func() { close(moving) })
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
}

// Threat 24, local tampering between runs: bytes of a temporary file
// changed after a fetch was interrupted are not taken on the log's word;
// the next run re-verifies every chunk, fetches the changed ones again,
// and ends byte for byte right.
func TestResumeRefetchesChangedChunks(t *testing.T) {
	e, model, root := seeded(t, 8)
	net := e.net.(*fakeNet)
	honest := net.peers["seeder"]
	net.peers["seeder"] = slowStore{Store: honest, pause: 100 * time.Millisecond}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := e.Get(ctx, root, out, Options{Progress: func(p Progress) {
		if p.Phase == "fetching" && p.Done >= 2<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted fetch: %v", err)
	}
	parts, _ := filepath.Glob(filepath.Join(out, "*"+content.PartialExt))
	if len(parts) == 0 {
		t.Fatal("no temporary file left to tamper with")
	}
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := 100; off < len(b); off += 256 << 10 {
			b[off] ^= 0xff
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	net.peers["seeder"] = honest
	res, err := e.Get(context.Background(), root, out, Options{})
	if err != nil {
		t.Fatalf("resume after tampering: %v", err)
	}
	sameFiles(t, model, out)
	if res.Chunks == 0 {
		t.Error("no chunk fetched again after tampering")
	}
}

// busyStore answers "busy" to the first chunk requests, as a server under
// memory pressure does (protocol.CodeBusy).
type busyStore struct {
	protocol.Store
	left *atomic.Int64
}

func (s busyStore) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	if s.left.Add(-1) >= 0 {
		return nil, protocol.ErrBusy
	}
	return s.Store.ReadChunk(c, buf)
}

// A busy reply is overload, not misbehaviour: the chunk is asked again
// after a pause, the fetch completes, and the peer is never struck.
func TestBusyPeerAskedAgain(t *testing.T) {
	e, model, root := seeded(t, 4)
	net := e.net.(*fakeNet)
	left := new(atomic.Int64)
	left.Store(20)
	net.peers["seeder"] = busyStore{Store: net.peers["seeder"], left: left}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := e.Get(context.Background(), root, out, Options{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, model, out)
	if left.Load() >= 0 {
		t.Fatal("the seeder was never busy")
	}
	if n := net.strikes["seeder"]; n != 0 {
		t.Errorf("a busy peer got %d strikes", n)
	}
}

// goneStore claims the model but no longer has its chunks (its files
// were deleted after they were added).
type goneStore struct{ protocol.Store }

func (goneStore) ReadChunk(cid.Cid, []byte) ([]byte, error) { return nil, protocol.ErrUnavailable }

// A source that claims the root and cannot send its chunks: the fetch
// fails naming that peer and why, as ErrNoSource, and keeps its resume
// state for a later run.
func TestGoneSourceNamed(t *testing.T) {
	e, _, root := seeded(t, 2)
	net := e.net.(*fakeNet)
	net.peers["seeder"] = goneStore{net.peers["seeder"]}
	out := filepath.Join(t.TempDir(), "out")
	_, err := e.Get(context.Background(), root, out, Options{})
	if !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), peer.ID("seeder").String()+" (peer cannot serve block)") {
		t.Fatalf("err = %v, want ErrNoSource naming the peer", err)
	}
	if _, serr := os.Stat(filepath.Join(out, StateDir)); serr != nil {
		t.Errorf("resume state not kept: %v", serr)
	}
}

// silentRecords serves chunks but never answers a records request, and
// says how its last one ended.
type silentRecords struct {
	protocol.Store
	ended chan error
}

func (s silentRecords) stallRecords(ctx context.Context) ([][]byte, error) {
	<-ctx.Done()
	s.ended <- ctx.Err()
	return nil, ctx.Err()
}

// A source that never answers a records request does not hold Get: the
// request is cancelled when the fetch is done, not left to run out its
// own deadline (which added it to every fetch from such a peer).
func TestSilentRecordsDoNotHoldGet(t *testing.T) {
	e, _, root := seeded(t, 1)
	net := e.net.(*fakeNet)
	ended := make(chan error, 1)
	net.peers["seeder"] = silentRecords{Store: net.peers["seeder"], ended: ended}
	if _, err := e.Get(context.Background(), root, filepath.Join(t.TempDir(), "out"), Options{Records: func([][]byte) {}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the records request ended by %v, want cancelled as Get returned", err)
		}
	default:
		t.Fatal("the records request was still running after Get returned")
	}
}
