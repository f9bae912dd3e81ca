package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/shoal-p2p/shoal/home"
	"golang.org/x/time/rate"
)

// limitBurst is the most bytes one wait asks for: a chunk in a few waits.
const limitBurst = 256 << 10

// newLimiter returns a limiter for bytesPerSec (0: unlimited, for now: a
// reload may set a cap).
func newLimiter(bytesPerSec int64) *rate.Limiter {
	return rate.NewLimiter(limitOf(bytesPerSec), limitBurst)
}

// limitOf is bytesPerSec as a rate; 0 or less is no cap.
func limitOf(bytesPerSec int64) rate.Limit {
	if bytesPerSec <= 0 {
		return rate.Inf
	}
	return rate.Limit(bytesPerSec)
}

// unlimited reports a limiter that lets everything through at once.
func unlimited(l *rate.Limiter) bool { return l == nil || l.Limit() == rate.Inf }

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
	if unlimited(l.up) {
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
	if unlimited(l.down) {
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

// Reload applies what a running node can take from a changed
// configuration (SIGHUP): the upload and download caps and the store's
// budget (storage_max). Everything else
// takes a restart; Reload says which settings it left as they were.
func (n *Node) Reload(cfg home.Config) (ignored []string, err error) {
	up, err := home.ParseRate(cfg.MaxUpload)
	if err != nil {
		return nil, fmt.Errorf("max_upload: %w", err)
	}
	down, err := home.ParseRate(cfg.MaxDownload)
	if err != nil {
		return nil, fmt.Errorf("max_download: %w", err)
	}
	budget, err := home.ParseSize(cfg.StorageMax)
	if err != nil {
		return nil, fmt.Errorf("storage_max: %w", err)
	}
	n.up.SetLimit(limitOf(up))
	n.down.SetLimit(limitOf(down))
	n.keeper.Budget.Store(budget)
	// The node's cfg is what it started with (read unlocked all over):
	// compare, do not write.
	old := n.cfg
	old.MaxUpload, old.MaxDownload, old.StorageMax = cfg.MaxUpload, cfg.MaxDownload, cfg.StorageMax
	return changedKeys(old, cfg), nil
}

// changedKeys names the config.toml keys whose values differ.
func changedKeys(a, b home.Config) []string {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var ma, mb map[string]json.RawMessage
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	for k, v := range ma {
		if string(mb[k]) != string(v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
