package node

import (
	"context"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"
)

// limitBurst is the most bytes one wait asks for: a chunk in a few waits.
const limitBurst = 256 << 10

// newLimiter returns a limiter for bytesPerSec, or nil for unlimited.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), limitBurst)
}

// meteredStream paces a stream's writes (upload) and reads (download), and
// counts the bytes that cross it.
type meteredStream struct {
	network.Stream
	up, down   *rate.Limiter // nil: unlimited
	sent, recv *atomic.Int64 // nil: not counted
}

func limitStream(s network.Stream, up, down *rate.Limiter, sent, recv *atomic.Int64) network.Stream {
	if up == nil && down == nil && sent == nil && recv == nil {
		return s
	}
	return &meteredStream{Stream: s, up: up, down: down, sent: sent, recv: recv}
}

func (l *meteredStream) Write(p []byte) (int, error) {
	if l.up == nil {
		n, err := l.Stream.Write(p)
		l.count(l.sent, n)
		return n, err
	}
	var n int
	for len(p) > 0 {
		k := min(len(p), limitBurst)
		_ = l.up.WaitN(context.Background(), k)
		w, err := l.Stream.Write(p[:k])
		n += w
		l.count(l.sent, w)
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func (l *meteredStream) Read(p []byte) (int, error) {
	if l.down == nil {
		n, err := l.Stream.Read(p)
		l.count(l.recv, n)
		return n, err
	}
	n, err := l.Stream.Read(p[:min(len(p), limitBurst)])
	if n > 0 {
		_ = l.down.WaitN(context.Background(), n)
	}
	l.count(l.recv, n)
	return n, err
}

func (l *meteredStream) count(c *atomic.Int64, n int) {
	if c != nil && n > 0 {
		c.Add(int64(n))
	}
}
