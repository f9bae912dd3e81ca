package fetch

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer that asks for the root just as a fetch ends is offered to the
// fetch's discovery while discovery closes its output: the offer must
// neither send on the closed channel (a panic that would kill a daemon)
// nor outlive Get. Peers ask in a tight loop across the whole fetch,
// its end included, many times over.
func TestAskedWhileFetchEnds(t *testing.T) {
	e, _, root := seeded(t, 1)
	net := e.net.(*fakeNet)
	// A dial takes a moment: the fetch may end while an offered peer is
	// being dialled.
	net.dialDelay = 2 * time.Millisecond
	net.fallback = net.peers["seeder"] // every asker holds the model
	for i := range 20 {
		var stop atomic.Bool
		var wg sync.WaitGroup
		for k := range 4 {
			wg.Go(func() {
				for j := 0; !stop.Load(); j++ {
					e.Asked(peer.ID(fmt.Sprintf("asker-%d-%d-%d", i, k, j)), root)
				}
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := e.Get(ctx, root, filepath.Join(t.TempDir(), "out"), Options{})
		cancel()
		time.Sleep(time.Millisecond)
		stop.Store(true)
		wg.Wait()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
}
