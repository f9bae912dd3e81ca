package node

import (
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/hostile"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

// A fetch verifies every chunk, not whole files, so a fetched file's
// sha256 is the manifest's word: its key is announced only once the node
// has hashed the file. A manifest whose sha256 for a file is false (its
// chunks right) fetches, and that file's key is never announced: the node
// does not claim to hold bytes it does not.
func TestFileKeysOnlyOnceChecked(t *testing.T) {
	ctx := ctxT(t)
	// a.bin's manifest entry lies about its sha256; b.bin's is true.
	blocks := map[cid.Cid][]byte{}
	var files []content.File
	var chunks []content.ChunkRef
	var keys []cid.Cid
	for i, name := range []string{"a.bin", "b.bin"} {
		data := testmodel.Bytes(content.MaxChunk+1000, uint64(40+i))
		sum := sha256.Sum256(data)
		if i == 0 {
			sum = sha256.Sum256([]byte("some other file"))
		}
		keys = append(keys, content.FileKey(sum))
		for off := 0; off < len(data); off += content.MaxChunk {
			c := data[off:min(off+content.MaxChunk, len(data))]
			id := content.SumCID(content.CodecRaw, c)
			blocks[id] = c
			chunks = append(chunks, content.ChunkRef{CID: content.Link{Cid: id}, Len: uint64(len(c))})
		}
		files = append(files, content.File{Path: name, Size: uint64(len(data)), SHA256: sum[:], Chunks: 2})
	}
	m := &content.Manifest{Files: files, Chunks: chunks}
	mblocks, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range mblocks {
		blocks[b.CID] = b.Data
	}
	root := mblocks[0].CID
	seeder := newTestNode(t)
	srv := &protocol.Server{Store: hostile.Blocks(blocks)}
	seeder.Host.SetStreamHandler(protocol.ID, srv.Handle)
	fetcher := newTestNode(t, seeder.Addrs()[0].String())
	if _, err := fetcher.Service().Get(ctx, api.GetRequest{Root: root, Dir: filepath.Join(t.TempDir(), "out")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "b.bin's key, once hashed", func() bool {
		k, _ := fetcher.Keys(root)
		return slices.Contains(k, keys[1])
	})
	if k, _ := fetcher.Keys(root); slices.Contains(k, keys[0]) {
		t.Fatal("the key of a file whose bytes do not match the manifest's sha256 is announced")
	}
}
