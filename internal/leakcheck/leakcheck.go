// Package leakcheck fails a test that leaves goroutines behind, in the
// manner of tailscale's tstest.ResourceCheck: call Check first in a test,
// and when the test's other cleanups have run, every goroutine started
// since must have ended (within a few seconds), or the test fails with
// their stacks.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait bounds how long the check waits for goroutines to end.
const Wait = 5 * time.Second

// ignored are goroutines that libraries start once per process, lazily,
// and keep: not a leak of the code under test. Each is matched anywhere
// in a goroutine's stack (its frames and the line saying who created it).
var ignored = []string{
	"net/http.(*persistConn)",     // idle keep-alive connections of a shared transport
	"go.opencensus.io/stats/view", // a worker started by an import
	"github.com/ipfs/go-log",      // log plumbing
	"quicreuse.(*reuse).gc",       // go-libp2p's process-wide QUIC reuse pool
	"created by testing.(*T).Run", // subtests' runners
}

// Check records the goroutines running now and registers a cleanup that
// fails t if goroutines started after this call are still running once
// the test (and the cleanups registered after Check) is over.
func Check(t testing.TB) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		var left map[string]string
		deadline := time.Now().Add(Wait)
		for {
			left = map[string]string{}
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok && !isIgnored(stack) {
					left[id] = stack
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(left) > 0 {
			var b strings.Builder
			for _, s := range left {
				b.WriteString(s)
				b.WriteString("\n\n")
			}
			t.Errorf("%d goroutines left running after the test:\n%s", len(left), b.String())
		}
	})
}

func isIgnored(stack string) bool {
	for _, ig := range ignored {
		if strings.Contains(stack, ig) {
			return true
		}
	}
	return false
}

// goroutines returns every goroutine's stack by its ID.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		f := strings.Fields(head) // goroutine 12 [running]:
		if len(f) >= 2 && f[0] == "goroutine" {
			out[f[1]] = g
		}
	}
	return out
}
