package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/hostile"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

// clientConfig is a node whose DHTs answer nobody: nothing it provides is
// stored anywhere but in itself.
func clientConfig(boot ...string) home.Config {
	c := testConfig(boot...)
	c.DHTMode = "client"
	return c
}

// A model held by a directly connected peer moves without any DHT record:
// the seeder's DHTs are clients (nobody stores its provider records), and
// the fetcher asks the peers it is connected to.
func TestConnectedPeerAskedFirst(t *testing.T) {
	ctx := ctxT(t)
	seeder := newTestNodeCfg(t, clientConfig())
	model, im := addModel(t, seeder, 71)
	fetcher := newTestNodeCfg(t, clientConfig(seeder.Addrs()[0].String()))
	if fetcher.tableSize() != 0 || seeder.tableSize() != 0 {
		t.Fatalf("routing tables hold %d and %d peers: the test proves nothing", fetcher.tableSize(), seeder.tableSize())
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if res.Peers != 1 {
		t.Fatalf("result %+v", res)
	}
}

// A peer that connects after the fetch started is asked too.
func TestPeerConnectingLaterAsked(t *testing.T) {
	ctx := ctxT(t)
	seeder := newTestNodeCfg(t, clientConfig())
	model, im := addModel(t, seeder, 72)
	fetcher := newTestNodeCfg(t, clientConfig())
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = fetcher.Host.Connect(ctx, peer.AddrInfo{ID: seeder.Host.ID(), Addrs: seeder.Host.Addrs()})
	}()
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// hangingPeer is a bootstrap address that accepts TCP connections and
// never answers: connecting to it takes until the dial times out.
func hangingPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	k, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(k)
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", ln.Addr().(*net.TCPAddr).Port, id)
}

// The local API is up, and its file written, before bootstrapping ends:
// a bootstrap peer that never answers does not hold the daemon back.
func TestDaemonReadyBeforeBootstrap(t *testing.T) {
	hm := home.Home{Dir: t.TempDir()}
	if _, err := hm.Init(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(hangingPeer(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	ready := make(chan *Node, 1)
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, hm, cfg, nil, func(n *Node, _ string) { ready <- n }) }()
	var n *Node
	select {
	case n = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Logf("API up after %v", time.Since(start))
	if _, err := os.Stat(hm.APIPath()); err != nil {
		t.Fatal(err)
	}
	cl, err := Dial(ctx, hm)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bootstrap.State == "done" || st.Bootstrap.State == "failed" {
		t.Fatalf("bootstrap %+v before the API was up: it held the daemon back", st.Bootstrap)
	}
	if st.PeerID != n.Host.ID().String() || st.DHT.LAN.Mode != "server" {
		t.Fatalf("status %+v", st)
	}
	cancel()
	<-done
}

// An announce that fails (no peers yet) is retried, and succeeds once the
// routing table holds a peer; status says so.
func TestFailedAnnounceRetried(t *testing.T) {
	ctx := ctxT(t)
	holder := newTestNode(t)
	_, im := addModel(t, holder, 73)
	if im.Announced {
		t.Fatal("announced with no peers at all")
	}
	root := im.M.Root
	waitFor(t, 10*time.Second, "a failed announce in status", func() bool {
		for _, r := range holder.Status().Roots {
			if r.Root.Equals(root) && r.Err != "" && r.Last.IsZero() {
				return true
			}
		}
		return false
	})
	other := newTestNode(t, holder.Addrs()[0].String())
	waitFor(t, 30*time.Second, "the announce retried", func() bool {
		for _, r := range holder.Status().Roots {
			if r.Root == root && !r.Last.IsZero() && r.Err == "" {
				return true
			}
		}
		return false
	})
	found := false
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for p := range other.DHT.FindProvidersAsync(fctx, im.M.Root, 1) {
		found = found || p.ID == holder.Host.ID()
	}
	if !found {
		t.Fatal("announced, yet not found")
	}
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A holder restarted with only a dead bootstrap peer finds the network
// again through the peers it remembers, and is found again.
func TestRestartThroughRememberedPeers(t *testing.T) {
	ctx := ctxT(t)
	boot := newTestNode(t)
	bootAddr := boot.Addrs()[0].String()
	c, d := newTestNode(t, bootAddr), newTestNode(t, bootAddr)

	hm := home.Home{Dir: t.TempDir()}
	if _, err := hm.Init(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(bootAddr)
	open := func() (*Node, func() error) {
		n, closeNode, err := Open(hm, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.startDaemonLoops()
		bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := n.Bootstrap(bctx); err != nil {
			closeNode()
			t.Fatal(err)
		}
		return n, closeNode
	}
	holder, closeHolder := open()
	_, im := addModel(t, holder, 74)
	waitFor(t, 10*time.Second, "connections to the others", func() bool {
		return len(holder.Host.Network().Peers()) >= 3
	})
	closeHolder() // remembers its peers on the way out
	boot.Close()
	if n := len(hm.RememberedPeers()); n < 2 {
		t.Fatalf("remembered %d peers", n)
	}

	holder, closeHolder = open()
	defer closeHolder()
	st := holder.Status().Bootstrap
	if st.Reached < 2 || st.Remembered < 2 {
		t.Fatalf("bootstrap after restart: %+v", st)
	}
	fetcher := newTestNode(t, d.Addrs()[0].String())
	_ = c
	waitFor(t, time.Minute, "the restarted holder among the providers", func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for p := range fetcher.DHT.FindProvidersAsync(fctx, im.M.Root, 0) {
			if p.ID == holder.Host.ID() {
				return true
			}
		}
		return false
	})
}

// onlyLoopback reports whether this process sees no network interface but
// loopback (as inside the namespace scripts/test.sh makes): multicast then
// cannot leave the machine.
func onlyLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// Two nodes with no bootstrap peers find each other by mDNS and fetch.
func TestMDNSFindsLANPeer(t *testing.T) {
	if !onlyLoopback() {
		t.Skip("mDNS multicasts on every interface: run through scripts/test.sh, which isolates the tests in a network namespace with only loopback (multicast on); scripts/nat-test.sh shows mDNS on a LAN of namespaces")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil || lo.Flags&net.FlagMulticast == 0 {
		t.Skip("loopback without multicast (ip link set lo multicast on): scripts/nat-test.sh shows mDNS on a LAN of namespaces")
	}
	ctx := ctxT(t)
	cfg := testConfig()
	cfg.MDNS = true
	seeder := newTestNodeCfg(t, cfg)
	model, im := addModel(t, seeder, 75)
	fetcher := newTestNodeCfg(t, cfg)
	waitFor(t, 20*time.Second, "an mDNS connection", func() bool {
		return len(fetcher.Host.Network().ConnsToPeer(seeder.Host.ID())) > 0
	})
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// A malformed bootstrap address is refused at start, naming it.
func TestBadBootstrapRefused(t *testing.T) {
	cfg := testConfig("/ip4/127.0.0.1/tcp/notaport")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "notaport") {
		t.Fatalf("validate: %v", err)
	}
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	k, _, _ := crypto.GenerateEd25519Key(nil)
	if _, err := New(cfg, k, idx, nil); err == nil {
		t.Fatal("node started with a malformed bootstrap address")
	}
	_ = testmodel.Folder
}

// Connected peers are asked at once, so any peer that dials a fetcher can
// claim a model: four that claim it and then stall, connected before the
// honest seeder, do not hold the manifest back (it is raced across
// sources), nor the records. Sequentially, each would cost a request
// timeout (20 s here), and the fetch would outlast the test's minute.
func TestStallersDoNotHoldBackManifest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeder := newTestNodeCfg(t, clientConfig())
	model, im := addModel(t, seeder, 76)
	cfg := clientConfig()
	cfg.RequestTimeout = home.Duration(20 * time.Second)
	fetcher := newTestNodeCfg(t, cfg)
	for range 4 {
		st := newTestNodeCfg(t, clientConfig())
		st.Host.SetStreamHandler(protocol.ID, func(s network.Stream) {
			(&protocol.Server{Store: hostile.Staller{Root: im.M.Root}}).Handle(s)
		})
		if err := fetcher.Host.Connect(ctx, peer.AddrInfo{ID: st.Host.ID(), Addrs: st.Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fetcher.Host.Connect(ctx, peer.AddrInfo{ID: seeder.Host.ID(), Addrs: seeder.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	t.Logf("fetched beside 4 stallers in %v", time.Since(start))
	sameTree(t, model, out)
	if peersUsed(res)[seeder.Host.ID().String()] == 0 {
		t.Fatalf("the seeder sent nothing: %+v", res.Sources)
	}
}

// A node run for one command (ShortLived, no daemon loops) fetches but
// leaves no provider record on any DHT node: fetchers that outlive it
// would dial a process long gone.
func TestShortLivedFetcherProvidesNothing(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 4)
	model, im := addModel(t, nodes[1], 77)
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	k, _, _ := crypto.GenerateEd25519Key(nil)
	cfg := testConfig(nodes[0].Addrs()[0].String()).ShortLived()
	fetcher, err := New(cfg, k, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fetcher.Close()
	if err := fetcher.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	time.Sleep(500 * time.Millisecond) // an announce would have gone out by now
	held := 0
	for _, n := range nodes {
		ps := providers(t, n, im.M.Root)
		if ps[fetcher.Host.ID()] {
			t.Fatalf("%s stores a provider record of the short-lived fetcher", n.Host.ID())
		}
		if ps[nodes[1].Host.ID()] {
			held++
		}
	}
	if held == 0 {
		t.Fatal("no node stores the seeder's record either: the test proves nothing")
	}
}

// A bootstrap address whose /p2p/ part names another peer is reported as
// that, not as "dial backoff" (the DHT's own dial had failed a moment
// before, and libp2p then refuses to dial again for a while).
func TestBootstrapWrongPeerIDNamed(t *testing.T) {
	seeder := newTestNode(t)
	wrong, _, _ := crypto.GenerateEd25519Key(nil)
	wrongID, _ := peer.IDFromPrivateKey(wrong)
	addr := seeder.Host.Addrs()[0].String() + "/p2p/" + wrongID.String()
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	n, err := New(testConfig(addr), key, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); idx.Close() })
	err = n.Bootstrap(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "check the /p2p/ part") || !strings.Contains(err.Error(), seeder.Host.ID().String()) {
		t.Fatalf("bootstrap through a wrong peer ID: %v", err)
	}
}
