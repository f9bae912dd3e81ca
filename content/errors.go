package content

import "errors"

// Errors of content: what a CID, a block, a manifest, a record, a file
// or the index can be refused for. Errors returned wrap one of these (and
// their cause).
var (
	// ErrBadCID reports a CID that does not parse.
	ErrBadCID = errors.New("malformed CID")
	// ErrHashNotAllowed reports a CID whose version, codec or hash function
	// is not on the allowlist (CIDv1, raw or dag-cbor, sha2-256/32).
	ErrHashNotAllowed = errors.New("CID not allowed")
	// ErrHashMismatch reports bytes that do not hash to the CID they were
	// sent for.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrNotFound reports a block, chunk or root this node does not hold.
	ErrNotFound = errors.New("not found")
	// ErrChanged reports a file that was changed or removed on disk after it
	// was added: its bytes are no longer served.
	ErrChanged = errors.New("file changed on disk since it was added")
	// ErrLocked reports an index already open by another process.
	ErrLocked = errors.New("index in use by another shoal process")
	// ErrBadManifest reports a manifest block that does not decode, is not in
	// canonical dag-cbor form, or is inconsistent with the rest of the manifest.
	ErrBadManifest = errors.New("bad manifest")
	// ErrInvalidSignature reports an envelope whose signature does not
	// verify (libp2p's record.ErrInvalidSignature is wrapped).
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrBadRecord reports a record that does not decode or breaks a rule.
	ErrBadRecord = errors.New("bad publisher record")
	// ErrExpired reports a record past its expiry.
	ErrExpired = errors.New("record expired")
	// ErrRollback reports a record older than one already seen.
	ErrRollback = errors.New("record older than one already seen")
	// ErrBadSafetensors reports a safetensors header that fails validation; the
	// file is then chunked as a plain file.
	ErrBadSafetensors = errors.New("invalid safetensors header")
	// ErrBadGGUF reports a GGUF header that fails validation; the file is
	// then chunked as a plain file.
	ErrBadGGUF = errors.New("invalid GGUF header")
	// ErrChangedWhileReading reports a file that changed while it was imported.
	ErrChangedWhileReading = errors.New("file changed while it was read")
	// ErrNotRoot reports a CID that cannot name a model: a chunk's.
	ErrNotRoot = errors.New("not a model root")
	// ErrNothingToAdd reports a folder that holds no regular file to add.
	ErrNothingToAdd = errors.New("no regular file to add")
	// ErrBadPath reports a manifest path that could write outside the target
	// folder, or that is ambiguous on some file system.
	ErrBadPath = errors.New("unsafe path in manifest")
)
