package content

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// Whatever the getter is, every block is checked against its CID: a
// getter that lies about any one block is caught, and a getter's error
// comes back wrapped.
func TestAssembleManifestRefusesLies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := testmodel.Folder(dir, 2, 3); err != nil {
		t.Fatal(err)
	}
	im, err := Import(t.Context(), dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := getter(im.Blocks)
	m, blocks, err := AssembleManifest(im.M.Root, good)
	if err != nil || m.Root != im.M.Root || len(blocks) != len(im.Blocks) || len(m.Chunks) != len(im.M.Chunks) {
		t.Fatalf("assemble: %v", err)
	}
	for _, b := range im.Blocks {
		lie := func(c cid.Cid) ([]byte, error) {
			d, err := good(c)
			if c == b.CID {
				d = bytes.Clone(d)
				d[len(d)/2] ^= 1
			}
			return d, err
		}
		if _, _, err := AssembleManifest(im.M.Root, lie); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("a lie about block %s: %v, want ErrHashMismatch", b.CID, err)
		}
	}
	boom := errors.New("boom")
	if _, _, err := AssembleManifest(im.M.Root, func(cid.Cid) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("getter error: %v", err)
	}
}

// A root with more list blocks than Encode ever makes is refused before
// any of them is fetched: it would have a fetcher download and hold
// gigabytes of valid list blocks.
func TestRootWithTooManyLinksRefused(t *testing.T) {
	link := Link{SumCID(CodecDagCBOR, []byte("list"))}
	r := Root{Format: FormatVersion, Chunker: ChunkerVersion, NChunks: uint64(MaxLinks+1) * ChunksPerBlock}
	for range MaxLinks + 1 {
		r.Chunks = append(r.Chunks, link)
	}
	b, err := encMode.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRoot(b); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("root with %d chunk blocks: %v", MaxLinks+1, err)
	}
}
