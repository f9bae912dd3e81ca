// Package fetch is the fetch engine: one fetch of a model root into a
// folder, from every source at once. It finds sources (this node's index,
// peers already connected, providers of the root and of each file key on
// the DHT, again and again while it runs), races the manifest across
// them, then moves chunks rarest first with per-source pacing, verifies
// each chunk against its CID before it is written, and keeps a resume log
// (authenticated with the home's key) so an interrupted fetch moves only
// what is missing. It serves what a running fetch holds to other
// fetchers (Engine is a protocol.Store).
//
// The engine never sees libp2p's host or DHT: it asks the small Network
// interface, which the node implements.
package fetch
