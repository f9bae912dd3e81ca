package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-p2p/shoal/content"
)

// changedStore holds every chunk, in a file that changed on disk.
type changedStore struct{ mapStore }

func (changedStore) ReadChunk(cid.Cid, []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: /models/a/model.safetensors", content.ErrChanged)
}

// countHandler counts the log lines at each level.
type countHandler struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[slog.Level]int{}
	}
	h.n[r.Level]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) atLeast(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for lv, k := range h.n {
		if lv >= l {
			n += k
		}
	}
	return n
}

// Threat 28: a flood of requests for chunks of a changed file costs one
// warning line per peer, not one per request.
func TestChangedFileFloodLogsLittle(t *testing.T) {
	h := &countHandler{}
	srv := &Server{Store: changedStore{mapStore{}}, Log: slog.New(h)}
	sum, err := mh.Sum([]byte("a chunk of a changed file"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, sum)
	const flood = 1000
	for peerN := 1; peerN <= 2; peerN++ {
		cl := NewClient(pair(t, srv.Handle))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, flood)
		for g := range 8 {
			wg.Go(func() {
				for range flood / 8 {
					if _, err := cl.Get(ctx, c, content.MaxBlock); !errors.Is(err, ErrUnavailable) {
						errs <- fmt.Errorf("worker %d: err = %v, want ErrUnavailable", g, err)
						return
					}
				}
			})
		}
		wg.Wait()
		cancel()
		cl.Close()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := h.atLeast(slog.LevelWarn); n != peerN {
			t.Fatalf("%d warning lines after %d peers sent %d requests each, want %d (one per peer)", n, peerN, flood, peerN)
		}
	}
}

// A stream that carried chunks leaves one info line: peer, blocks, bytes,
// how long, and the root when a have-map named it.
func TestServedLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := servedLog{start: time.Now(), blocks: 3, bytes: 3 << 20, root: content.SumCID(content.CodecDagCBOR, []byte("r"))}
	l.log(log, peer.ID("p"))
	line := buf.String()
	for _, want := range []string{"msg=served", "blocks=3", "bytes=3145728", "root=bafyrei"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	buf.Reset()
	(&servedLog{start: time.Now()}).log(log, peer.ID("p"))
	if buf.Len() != 0 {
		t.Errorf("a stream that served nothing logged %q", buf.String())
	}
}
