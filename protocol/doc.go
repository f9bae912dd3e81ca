// Package protocol is Shoal's block exchange, /shoal/xfer/1.2.0 (ID): a libp2p
// stream carrying length-prefixed frames, requests for manifest blocks and
// chunks by CID, pipelined on one stream, answered in order with the block
// or an explicit error. Every length read off the wire is capped before
// anything is allocated. SPEC.md at the repository root states the wire
// format; this package holds the codec and the client and server halves.
package protocol
