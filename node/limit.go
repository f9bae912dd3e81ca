package node

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"
)

// ParseRate parses a byte rate such as "50MB/s", "1.5GiB/s", "800KB" or
// "0" (unlimited) into bytes per second. Units: B, KB, MB, GB, TB
// (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024); "/s" is
// optional.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	if t == "" || t == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, "B"
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q: want a number and a unit, e.g. 50MB/s", s)
	}
	mult := map[string]float64{
		"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
	}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("rate %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB, GiB)", s, unit)
	}
	r := v * mult
	if r > 0 && r < 1024 {
		return 0, fmt.Errorf("rate %q: below 1 KiB/s", s)
	}
	return int64(r), nil
}

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
