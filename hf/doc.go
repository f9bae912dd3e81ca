// Package hf lets Hugging Face tools use Shoal: a read-only endpoint that
// speaks the part of the Hugging Face Hub HTTP API that download clients
// use (NewEndpoint), so a client pointed at it with HF_ENDPOINT (Python)
// or hubUrl (JavaScript) downloads a model over Shoal into its usual
// cache, and the Hugging Face cache layout on disk.
//
// The endpoint addresses a model as the Hub does, by a repo id
// "publisher/name" and a revision, and answers from the model's manifest
// (SPEC.md §3): a file's LFS oid is its whole-file sha256, and the commit
// hash of a revision is derived from the root CID (see Commit). It never
// offers Xet storage, so clients fall back to plain HTTP downloads, and
// every byte it serves comes from Models.ReadFile, verified chunk by chunk.
//
// SPEC.md at the repository root specifies the manifest and the CIDs.
package hf
