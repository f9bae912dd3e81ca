package content

import (
	"crypto/sha256"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Multicodec codes of the two block kinds Shoal uses.
const (
	CodecRaw     = cid.Raw     // 0x55: a chunk of file bytes
	CodecDagCBOR = cid.DagCBOR // 0x71: a manifest block
)

// MaxCIDLen bounds the binary length of any CID Shoal accepts.
const MaxCIDLen = 64

// SumCID returns the CIDv1 of data as a block of the given codec, hashed
// with sha2-256.
func SumCID(codec uint64, data []byte) cid.Cid {
	d := sha256.Sum256(data)
	return DigestCID(codec, d[:])
}

// DigestCID builds the CIDv1 of a sha2-256 digest already computed.
func DigestCID(codec uint64, digest []byte) cid.Cid {
	m, err := mh.Encode(digest, mh.SHA2_256)
	if err != nil {
		// Encode fails only for unknown codes or wrong lengths; callers pass
		// 32 bytes from sha256.
		return cid.Undef
	}
	return cid.NewCidV1(codec, m)
}

// FileKey is the DHT key announced for a whole file: its sha256 as a
// multihash inside a CIDv1 raw (the CID the whole file would have as one
// block).
func FileKey(sum [32]byte) cid.Cid { return DigestCID(CodecRaw, sum[:]) }

// FileKeyMin is the least size of a file whose key is announced and
// looked up beside the root: a file of at least one whole chunk. Smaller
// files come from the root's providers; a key for each of 10,000 tiny
// files would cost 10,000 DHT records and lookups for a few hundred KiB.
const FileKeyMin = MaxChunk

// CheckCID enforces the allowlist: CIDv1, codec raw or dag-cbor, and a
// sha2-256 multihash with a 32-byte digest.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return ErrBadCID
	}
	if c.Version() != 1 {
		return fmt.Errorf("%w: version %d (want 1)", ErrHashNotAllowed, c.Version())
	}
	if t := c.Type(); t != CodecRaw && t != CodecDagCBOR {
		return fmt.Errorf("%w: codec 0x%x", ErrHashNotAllowed, t)
	}
	dm, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCID, err)
	}
	if dm.Code != mh.SHA2_256 {
		return fmt.Errorf("%w: hash function 0x%x (want sha2-256)", ErrHashNotAllowed, dm.Code)
	}
	if dm.Length != sha256.Size || len(dm.Digest) != sha256.Size {
		return fmt.Errorf("%w: digest length %d (want 32)", ErrHashNotAllowed, dm.Length)
	}
	return nil
}

// ParseCID parses the text form of a CID and applies CheckCID.
func ParseCID(s string) (cid.Cid, error) {
	if len(s) == 0 || len(s) > 2*MaxCIDLen+8 {
		return cid.Undef, fmt.Errorf("%w: %s", ErrBadCID, Quote(s))
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %s", ErrBadCID, Quote(s))
	}
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// CastCID parses the binary form of a CID, exactly (no trailing bytes), and
// applies CheckCID.
func CastCID(b []byte) (cid.Cid, error) {
	if len(b) == 0 || len(b) > MaxCIDLen {
		return cid.Undef, ErrBadCID
	}
	n, c, err := cid.CidFromBytes(b)
	if err != nil || n != len(b) {
		return cid.Undef, ErrBadCID
	}
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// Digest returns the 32-byte sha2-256 digest inside an allowed CID.
func Digest(c cid.Cid) ([32]byte, error) {
	var d [32]byte
	if err := CheckCID(c); err != nil {
		return d, err
	}
	dm, _ := mh.Decode(c.Hash())
	copy(d[:], dm.Digest)
	return d, nil
}

// VerifyBlock checks that data hashes to c. It is the one check every
// received chunk and manifest block passes before it is stored or used.
func VerifyBlock(c cid.Cid, data []byte) error {
	want, err := Digest(c)
	if err != nil {
		return err
	}
	if sha256.Sum256(data) != want {
		return fmt.Errorf("%w: block %s", ErrHashMismatch, c)
	}
	return nil
}
