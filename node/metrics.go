package node

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics returns the node's Prometheus metrics, read from its state at
// each scrape: what it served and fetched, its peers and DHTs, what it
// holds and fetches, and the bad data it refused.
func (n *Node) Metrics() http.Handler {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "shoal", Name: name, Help: help}, f))
	}
	gauge := func(name, help string, labels prometheus.Labels, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shoal", Name: name, Help: help, ConstLabels: labels}, f))
	}
	counter("served_bytes_total", "Exchange-protocol bytes sent to other peers.", func() float64 { return float64(n.served.Load()) })
	counter("fetched_bytes_total", "Exchange-protocol bytes received from other peers.", func() float64 { return float64(n.fetched.Load()) })
	counter("bad_chunks_total", "Chunks refused because they did not hash to their CID (a strike each).", func() float64 { return float64(n.badChunks.Load()) })
	gauge("peers_connected", "Peers connected now.", nil, func() float64 { return float64(len(n.Host.Network().Peers())) })
	gauge("dht_routing_table_peers", "Peers in a DHT's routing table.", prometheus.Labels{"dht": "lan"},
		func() float64 { return float64(n.DHT.LAN.RoutingTable().Size()) })
	gauge("dht_routing_table_peers", "Peers in a DHT's routing table.", prometheus.Labels{"dht": "wan"},
		func() float64 { return float64(n.DHT.WAN.RoutingTable().Size()) })
	gauge("fetches_in_flight", "Fetches running now.", nil, func() float64 { return float64(len(n.fetcher.Running())) })
	gauge("roots_held", "Models this node holds.", nil, func() float64 {
		roots, _ := n.Index.Roots()
		return float64(len(roots))
	})
	counter("provides_total", "DHT keys announced: roots and file keys, never chunks.", func() float64 { return float64(n.provides.Load()) })
	counter("chunks_served_total", "Chunks (and manifest blocks) sent to other peers.", func() float64 { return float64(n.chunksServed.Load()) })
	counter("verify_failures_total", "Held chunks whose bytes on disk no longer hash to their CID (bit rot): not served.", func() float64 { return float64(n.rotten.Load()) })
	gauge("provide_queue", "Roots and record sets waiting to be announced (due or running).", nil, func() float64 {
		q, _ := n.provideQueue()
		return float64(q)
	})
	gauge("provide_last_success_timestamp_seconds", "When an announce last succeeded (Unix time; 0: never).", nil, func() float64 {
		_, last := n.provideQueue()
		if last.IsZero() {
			return 0
		}
		return float64(last.UnixNano()) / 1e9
	})
	gauge("storage_used_bytes", "Bytes of the models in the node's store.", nil, func() float64 { return float64(n.keeper.Used()) })
	gauge("storage_budget_bytes", "The store's budget, storage_max (0: none).", nil, func() float64 { return float64(n.keeper.Budget.Load()) })
	gauge("pins", "Pinned roots.", nil, func() float64 {
		pins, _ := n.Index.Pins()
		return float64(len(pins))
	})
	gauge("follows", "Followed publishers.", nil, func() float64 {
		fs, _ := n.Index.Follows()
		return float64(len(fs))
	})
	counter("records_rejected_total", "Gossiped records refused (bad signature, wrong publisher, undecodable): dropped, not relayed.", func() float64 {
		if n.follower == nil {
			return 0
		}
		return float64(n.follower.Rejected())
	})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// provideQueue is how many announces wait, and when one last succeeded.
func (n *Node) provideQueue() (int, time.Time) {
	if n.ann == nil {
		return 0, time.Time{}
	}
	return n.ann.queue()
}
