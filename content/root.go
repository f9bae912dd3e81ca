package content

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// CheckRoot accepts a CID that can name a model: allowed (CheckCID) and a
// manifest (dag-cbor), not a chunk.
func CheckRoot(root cid.Cid) error {
	if err := CheckCID(root); err != nil {
		return err
	}
	if root.Type() != CodecDagCBOR {
		return fmt.Errorf("%s: %w: it is a chunk (want a dag-cbor CID)", root, ErrNotRoot)
	}
	return nil
}
