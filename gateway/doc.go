// Package gateway serves a node's content over plain HTTP, for tools that
// speak HTTP and not Shoal's exchange protocol:
//
//   - GET/HEAD /ipfs/{cid} answers one block as
//     application/vnd.ipld.raw, the block-response subset of the IPFS
//     trustless gateway (https://specs.ipfs.tech/http-gateways/trustless-gateway/).
//     A client re-hashes the bytes against the CID and trusts nothing else.
//     Deserialized responses and CAR streams are not served (406).
//   - GET/HEAD /models/{root}/{path...} streams one file of a model, with
//     Range support, each chunk verified against the manifest before a
//     byte of it is sent; /models/{root}/ lists the files as JSON.
//
// CIDs are those of SPEC.md §1 (CIDv1, raw or dag-cbor, sha2-256); others
// are refused before the node is asked. On a loopback connection the
// handler answers only to a loopback Host, so a web page cannot reach it
// by rebinding its own name to 127.0.0.1.
package gateway
