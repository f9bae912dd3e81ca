// Package hostile builds hostile manifests and a fixed block store, for tests
// and the end-to-end script that show Shoal refusing them.
package hostile

import (
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// Manifest builds, skipping every check, the blocks of a manifest
// listing one 5-byte file at each of paths (which may be unsafe), plus the
// chunk. Tests and the end-to-end script serve it from a hostile peer.
func Manifest(paths ...string) (cid.Cid, map[cid.Cid][]byte, error) {
	blocks := map[cid.Cid][]byte{}
	data := []byte("pwned")
	chunk := content.SumCID(content.CodecRaw, data)
	blocks[chunk] = data
	d, _ := content.Digest(chunk)
	var files []content.File
	var refs []content.ChunkRef
	for _, p := range paths {
		files = append(files, content.File{Path: p, Size: uint64(len(data)), SHA256: d[:], Chunks: 1})
		refs = append(refs, content.ChunkRef{CID: content.Link{Cid: chunk}, Len: uint64(len(data))})
	}
	fl, err := content.EncodeBlock(content.FileList{Files: files})
	if err != nil {
		return cid.Undef, nil, err
	}
	cl, err := content.EncodeBlock(content.ChunkList{Chunks: refs})
	if err != nil {
		return cid.Undef, nil, err
	}
	rb, err := content.EncodeBlock(content.Root{Format: content.FormatVersion, Chunker: content.ChunkerVersion,
		Size: uint64(len(data) * len(paths)), NFiles: uint64(len(paths)), NChunks: uint64(len(paths)),
		Files: []content.Link{{Cid: fl.CID}}, Chunks: []content.Link{{Cid: cl.CID}}})
	if err != nil {
		return cid.Undef, nil, err
	}
	blocks[fl.CID], blocks[cl.CID], blocks[rb.CID] = fl.Data, cl.Data, rb.Data
	return rb.CID, blocks, nil
}

// Blocks serves a fixed set of blocks (a protocol.Store).
type Blocks map[cid.Cid][]byte

// Block returns a block or content.ErrNotFound.
func (m Blocks) Block(c cid.Cid) ([]byte, error) {
	if b, ok := m[c]; ok {
		return b, nil
	}
	return nil, content.ErrNotFound
}

// ReadChunk returns a block as a chunk.
func (m Blocks) ReadChunk(c cid.Cid, _ []byte) ([]byte, error) { return m.Block(c) }

// Have claims to hold every chunk of any root it has blocks for.
func (m Blocks) Have(root cid.Cid) (protocol.HaveMap, error) {
	if _, ok := m[root]; !ok {
		return protocol.HaveMap{}, content.ErrNotFound
	}
	return protocol.HaveMap{Complete: true}, nil
}

// Records holds none.
func (m Blocks) Records(cid.Cid) [][]byte { return nil }

// Staller claims, in its have-map, every chunk of Root, then never sends a
// block, a chunk or a record: a source that would hold a fetch back.
type Staller struct{ Root cid.Cid }

// Block never answers.
func (s Staller) Block(cid.Cid) ([]byte, error) {
	time.Sleep(time.Hour)
	return nil, content.ErrNotFound
}

// ReadChunk never answers.
func (s Staller) ReadChunk(cid.Cid, []byte) ([]byte, error) {
	time.Sleep(time.Hour)
	return nil, content.ErrNotFound
}

// Records never answers.
func (s Staller) Records(cid.Cid) [][]byte { time.Sleep(time.Hour); return nil }

// Have claims all of Root.
func (s Staller) Have(root cid.Cid) (protocol.HaveMap, error) {
	if root != s.Root {
		return protocol.HaveMap{}, content.ErrNotFound
	}
	return protocol.HaveMap{Complete: true}, nil
}
