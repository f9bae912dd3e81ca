//go:build !race

// The 100-node network runs without the race detector (scripts/test.sh
// runs it in a step of its own): it tests the DHT's behaviour, which the
// smaller networks of the other tests cover under -race, and 100 hosts
// under -race on 2 cores take minutes and time out dials.

package node

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
)

// A network of 100 nodes in one process: providers are found with the
// bootstrap node gone, with the node closest to the key gone, and after
// 30 % of the nodes leave at random; a model with a live holder is still
// fetched by a newcomer that knows only one survivor. Lookup times are
// logged (p50, p90), not asserted.
func TestHundredNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("100 nodes: not in -short")
	}
	const size = 100
	ctx := ctxT(t)
	boot := newTestNode(t)
	nodes := []*Node{boot}
	// Each node knows the first one and one other node before it, as
	// peers learn addresses from each other; eight join at a time.
	for len(nodes) < size {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []error
		for range min(8, size-len(nodes)) {
			other := nodes[rand.IntN(len(nodes))]
			wg.Go(func() {
				n, err := joinNode(t, boot, other)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				nodes = append(nodes, n)
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
	}
	refreshAll(t, nodes)

	holder := nodes[1+rand.IntN(size-1)]
	model, im := addModel(t, holder, 81)
	root := im.M.Root
	waitFor(t, time.Minute, "the root announced in a network of 100", func() bool {
		for _, r := range holder.Status().Roots {
			if r.Root.Equals(root) && !r.Last.IsZero() {
				return true
			}
		}
		return false
	})
	alive := func() []*Node {
		var out []*Node
		for _, n := range nodes {
			if n.ctx.Err() == nil {
				out = append(out, n)
			}
		}
		return out
	}
	lookups := func(stage string) {
		t.Helper()
		var took []time.Duration
		asked := alive()
		rand.Shuffle(len(asked), func(i, j int) { asked[i], asked[j] = asked[j], asked[i] })
		for _, n := range asked[:20] {
			if n == holder {
				continue
			}
			start := time.Now()
			if !findsProvider(ctx, n, root, holder.Host.ID()) {
				t.Fatalf("%s: %s did not find the holder", stage, n.Host.ID())
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		t.Logf("%s: %d lookups, p50 %v, p90 %v", stage, len(took), took[len(took)/2], took[len(took)*9/10])
	}
	lookups("all 100 nodes")

	boot.Close()
	lookups("bootstrap node gone")

	closest := closestTo(alive(), root, holder)
	closest.Close()
	lookups("closest node to the root gone")

	leaving := alive()
	rand.Shuffle(len(leaving), func(i, j int) { leaving[i], leaving[j] = leaving[j], leaving[i] })
	gone := 0
	var cw sync.WaitGroup
	for _, n := range leaving {
		if gone == size*30/100 {
			break
		}
		if n != holder {
			cw.Go(func() { n.Close() })
			gone++
		}
	}
	cw.Wait()
	lookups("30 more nodes gone")

	survivor := alive()[rand.IntN(len(alive()))]
	for survivor == holder {
		survivor = alive()[rand.IntN(len(alive()))]
	}
	newcomer := newTestNode(t, survivor.Addrs()[0].String())
	out := filepath.Join(t.TempDir(), "out")
	if _, err := newcomer.Get(ctx, root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// joinNode starts a test node (a daemon) that bootstraps from boot and
// other, trying three times: 100 nodes on 2 cores under the race detector
// can time a dial out.
func joinNode(t *testing.T, boot, other *Node) (*Node, error) {
	cfg := testConfig(boot.Addrs()[0].String())
	if other != boot {
		cfg.Bootstrap = append(cfg.Bootstrap, other.Addrs()[0].String())
	}
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		return nil, err
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	n, err := New(cfg, key, idx, nil)
	if err != nil {
		idx.Close()
		return nil, err
	}
	t.Cleanup(func() { n.Close(); idx.Close() })
	n.startDaemonLoops()
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = n.Bootstrap(ctx)
		cancel()
		if err == nil || try == 2 {
			return n, err
		}
	}
}

// refreshAll fills every node's LAN routing table, all at once.
func refreshAll(t *testing.T, nodes []*Node) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			select {
			case <-n.DHT.LAN.ForceRefresh():
			case <-time.After(30 * time.Second):
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range nodes {
		total += n.DHT.LAN.RoutingTable().Size()
	}
	t.Logf("%d nodes, %.1f peers per LAN routing table", len(nodes), float64(total)/float64(len(nodes)))
}

// findsProvider reports whether n finds p among the providers of key
// within 10 s.
func findsProvider(ctx context.Context, n *Node, key cid.Cid, p peer.ID) bool {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for ai := range n.DHT.FindProvidersAsync(fctx, key, 0) {
		if ai.ID == p {
			return true
		}
	}
	return false
}

// closestTo is the node whose ID is closest to key in the DHT's metric,
// other than not.
func closestTo(nodes []*Node, key cid.Cid, not *Node) *Node {
	var ids []peer.ID
	byID := map[peer.ID]*Node{}
	for _, n := range nodes {
		if n != not {
			ids = append(ids, n.Host.ID())
			byID[n.Host.ID()] = n
		}
	}
	return byID[kb.SortClosestPeers(ids, kb.ConvertKey(string(key.Hash())))[0]]
}
