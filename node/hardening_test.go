package node

import (
	"bufio"
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/protocol"
)

// xferStat is what the resource manager accounts to the exchange
// protocol on n.
func xferStat(t *testing.T, n *Node) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	err := n.Host.Network().ResourceManager().ViewProtocol(protocol.ID, func(s network.ProtocolScope) error {
		st = s.Stat()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pool's victim cache
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Threat 27: many peer IDs each open their full share of exchange streams,
// ask one thing on each and then hold them idle. The seeder's memory does
// not grow with the streams held (no buffer is kept for an idle stream,
// and what a request uses is reserved in the resource manager), the idle
// streams are closed, and an honest fetch meanwhile completes.
func TestIdleStreamHoarders(t *testing.T) {
	ctx := ctxT(t)
	addr, seeds, model, im := seeders(t, 1, 8, nil)
	seed := seeds[0]
	const hosts, perHost = 40, 16
	const maxGrowth = 64 << 20 // the bug held 1 MiB per stream: 640 MiB here
	var hostiles []host.Host
	for range hosts {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(ctx, peer.AddrInfo{ID: seed.Host.ID(), Addrs: seed.Host.Addrs()}); err != nil {
			t.Fatal(err)
		}
		hostiles = append(hostiles, h)
	}
	before := heapInuse()
	var mu sync.Mutex
	var held []network.Stream
	var wg sync.WaitGroup
	for _, h := range hostiles {
		wg.Go(func() {
			for range perHost {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				s, err := h.NewStream(sctx, seed.Host.ID(), protocol.ID)
				cancel()
				if err != nil {
					continue
				}
				s.SetDeadline(time.Now().Add(10 * time.Second))
				req := protocol.AppendRequest(nil, protocol.KindHave, 1, im.M.Root)
				if _, err := s.Write(append([]byte{byte(len(req))}, req...)); err != nil {
					s.Reset()
					continue
				}
				if r, err := protocol.ReadResponse(bufio.NewReader(s)); err != nil || r.Have == nil {
					s.Reset()
					continue
				}
				s.SetDeadline(time.Time{})
				mu.Lock()
				held = append(held, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	growth := int64(heapInuse()) - int64(before)
	st := xferStat(t, seed)
	t.Logf("%d hostile streams accepted; seeder: %d inbound exchange streams, %d bytes reserved; heap grew %d MiB",
		len(held), st.NumStreamsInbound, st.Memory, growth>>20)
	if len(held) == 0 {
		t.Fatal("no hostile stream accepted: the test shows nothing")
	}
	if growth > maxGrowth {
		t.Errorf("heap grew by %d MiB with %d idle streams held, bound %d MiB", growth>>20, len(held), maxGrowth>>20)
	}
	if st.Memory > maxGrowth {
		t.Errorf("%d MiB reserved for idle streams, bound %d MiB", st.Memory>>20, maxGrowth>>20)
	}

	fetcher := newTestNode(t, addr)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)

	// The hoarders' streams are reclaimed without their help.
	deadline := time.Now().Add(40 * time.Second)
	for xferStat(t, seed).NumStreamsInbound > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := xferStat(t, seed).NumStreamsInbound; n > 0 {
		t.Fatalf("%d idle exchange streams still open at the seeder", n)
	}
}

// Threat 30: a download capped well below a chunk per request timeout
// still completes: a request's time runs from when it is sent and while
// its reply makes progress, not while it waits behind others.
func TestSlowDownloadCompletes(t *testing.T) {
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 1, nil) // about 2.7 MiB in all
	cfg := testConfig(addr)
	cfg.MaxDownload = "200KB/s"
	cfg.RequestTimeout = home.Duration(2 * time.Second)
	fetcher := newTestNodeCfg(t, cfg)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}
