package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
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
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
