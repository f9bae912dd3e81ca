package content

import (
	"bytes"
	"testing"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// TestBlocksAreDagCBOR decodes every manifest block with go-ipld-prime's
// strict dag-cbor codec and encodes it again: the bytes must not change, so
// any IPLD tool reads our manifests as we wrote them.
func TestBlocksAreDagCBOR(t *testing.T) {
	dir := t.TempDir()
	if _, err := testmodel.Folder(dir, 2, 3); err != nil {
		t.Fatal(err)
	}
	im := importPath(t, dir)
	for _, b := range im.Blocks {
		nb := basicnode.Prototype.Any.NewBuilder()
		if err := dagcbor.Decode(nb, bytes.NewReader(b.Data)); err != nil {
			t.Fatalf("block %s: %v", b.CID, err)
		}
		var out bytes.Buffer
		if err := dagcbor.Encode(nb.Build(), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), b.Data) {
			t.Fatalf("block %s is not canonical dag-cbor", b.CID)
		}
	}
}
