package node

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads a node's metrics as Prometheus would.
func scrape(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	n.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, rec.Body.String())
	}
	return fams
}

func value(f *dto.MetricFamily) float64 {
	m := f.GetMetric()[0]
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// The metrics parse with Prometheus's own parser and move when a fetch
// happens: bytes served by the seeder, fetched by the fetcher, roots held.
func TestMetricsMoveWithAFetch(t *testing.T) {
	ctx := ctxT(t)
	seeder := newTestNode(t)
	_, im := addModel(t, seeder, 81)
	fetcher := newTestNode(t, seeder.Addrs()[0].String())
	before := scrape(t, seeder)
	if v := value(before["shoal_served_bytes_total"]); v != 0 {
		t.Fatalf("served before any fetch: %v", v)
	}
	if _, err := fetcher.Get(ctx, im.M.Root, filepath.Join(t.TempDir(), "out"), GetOptions{}); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, seeder)
	if v := value(after["shoal_served_bytes_total"]); v < float64(im.M.Size()) {
		t.Errorf("seeder served %v bytes, the model has %d", v, im.M.Size())
	}
	got := scrape(t, fetcher)
	if v := value(got["shoal_fetched_bytes_total"]); v < float64(im.M.Size()) {
		t.Errorf("fetcher fetched %v bytes", v)
	}
	if v := value(got["shoal_roots_held"]); v != 1 {
		t.Errorf("fetcher holds %v roots", v)
	}
	for _, name := range []string{"shoal_peers_connected", "shoal_dht_routing_table_peers", "shoal_fetches_in_flight", "shoal_bad_chunks_total"} {
		if got[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// Reload (SIGHUP) applies new rate caps and the store's budget at once and names the changed
// settings that need a restart; a bad rate is refused whole.
func TestReloadRates(t *testing.T) {
	n := newTestNode(t)
	if !unlimited(n.up) || !unlimited(n.down) {
		t.Fatal("caps before any were set")
	}
	cfg := n.cfg
	cfg.MaxUpload, cfg.MaxDownload, cfg.StorageMax = "2MB/s", "400Mbit/s", "3GB"
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/9"}
	ignored, err := n.Reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n.up.Limit() != 2e6 || n.down.Limit() != 50e6 || n.keeper.Budget.Load() != 3e9 {
		t.Errorf("caps after reload: up %v, down %v, store budget %d", n.up.Limit(), n.down.Limit(), n.keeper.Budget.Load())
	}
	if len(ignored) != 1 || ignored[0] != "listen" {
		t.Errorf("needs a restart: %v, want [listen]", ignored)
	}
	cfg.MaxUpload = "fast"
	if _, err := n.Reload(cfg); err == nil || n.up.Limit() != 2e6 {
		t.Errorf("a bad rate: %v, cap now %v", err, n.up.Limit())
	}
	cfg.MaxUpload, cfg.MaxDownload = "0", "0"
	if _, err := n.Reload(cfg); err != nil || !unlimited(n.up) || !unlimited(n.down) {
		t.Errorf("caps lifted: %v", err)
	}
}
