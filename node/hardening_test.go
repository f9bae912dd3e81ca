package node

import (
	"path/filepath"
	"testing"
	"time"
)

// Threat 30: a download capped well below a chunk per request timeout
// still completes: a request's time runs from when it is sent and while
// its reply makes progress, not while it waits behind others.
func TestSlowDownloadCompletes(t *testing.T) {
	ctx := ctxT(t)
	addr, _, model, im := seeders(t, 1, 1, nil) // about 2.7 MiB in all
	cfg := testConfig(addr)
	cfg.MaxDownload = "200KB/s"
	cfg.RequestTimeout = Duration(2 * time.Second)
	fetcher := newTestNodeCfg(t, cfg)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}
