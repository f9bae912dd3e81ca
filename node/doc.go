// Package node runs a Shoal peer: the libp2p host (TCP and QUIC), the
// Kademlia DHT under the /shoal prefix, announcing held roots, finding
// providers, the fetch scheduler that pulls verified chunks from every
// source that has them, and the daemon's local HTTP API with its typed
// client. SPEC.md at the repository root states what goes on the wire.
package node
