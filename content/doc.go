// Package content turns files into content-addressed chunks and manifests and
// back: deterministic chunking (fixed 1 MiB, or on safetensors tensor
// boundaries), CIDv1 construction and parsing with a hash allowlist, the
// dag-cbor manifest and its split into blocks of at most 1 MiB, safe relative
// paths, the import pipeline, and the embedded index that maps chunk CIDs to
// bytes of files served in place.
//
// The formats are specified in SPEC.md at the repository root; golden tests
// pin them.
package content
