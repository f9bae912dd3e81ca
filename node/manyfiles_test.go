package node

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/content"
)

// manySmallFiles writes n files of a few bytes each under dir.
func manySmallFiles(t testing.TB, dir string, n int) {
	t.Helper()
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%50))
		if i < 50 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d.txt", i)), fmt.Appendf(nil, "file %05d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openFDs counts this process's open file descriptors.
func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// Threat 31: a model of 10,000 small files fetches with a bounded number
// of open files and flat memory. The limits asserted are generous
// bounds, not speeds: file descriptors well under 1024 (ulimit -n 1024
// works), heap well under 128 MiB.
func TestTenThousandSmallFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 files: not in -short")
	}
	ctx := ctxT(t)
	nodes := cluster(t, 2)
	model := filepath.Join(t.TempDir(), "model")
	manySmallFiles(t, model, 10_000)
	im, err := nodes[0].Add(ctx, model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	baseFDs := openFDs()
	var peakFDs int
	var peakHeap uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			peakFDs = max(peakFDs, openFDs())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	start := time.Now()
	out := filepath.Join(t.TempDir(), "out")
	_, err = nodes[1].Get(ctx, im.M.Root, out, GetOptions{})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 files in %v; open files %d → peak %d; peak heap in use %d MiB", time.Since(start), baseFDs, peakFDs, peakHeap>>20)
	sameTree(t, model, out)
	if extra := peakFDs - baseFDs; extra > 300 {
		t.Fatalf("the fetch held %d more files open (want a bounded few, far under ulimit -n 1024)", extra)
	}
	if peakHeap > 128<<20 {
		t.Fatalf("peak heap in use %d MiB during the fetch (both nodes), want < 128", peakHeap>>20)
	}
}
