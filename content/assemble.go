package content

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// AssembleManifest builds the manifest of root from its blocks, asking get
// for each: the root block, then its file-list and chunk-list blocks in
// order. Every block is verified against its CID here, whatever the
// getter is (a peer, the index), so a getter that lies is caught
// (ErrHashMismatch), and the decoded manifest must be canonical and safe
// (ErrBadManifest, ErrBadPath). It returns the manifest and every block,
// root first. A getter's error is returned wrapped.
func AssembleManifest(root cid.Cid, get func(cid.Cid) ([]byte, error)) (*Manifest, []Block, error) {
	vget := func(c cid.Cid) ([]byte, error) {
		b, err := get(c)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		if err := VerifyBlock(c, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	data, err := vget(root)
	if err != nil {
		return nil, nil, err
	}
	blocks := []Block{{CID: root, Data: data}}
	r, err := DecodeRoot(data)
	if err != nil {
		return nil, nil, err
	}
	files, err := collect(r.Files, vget, func(i int, b []byte) ([]File, error) { return DecodeFileList(r, i, b) }, &blocks)
	if err != nil {
		return nil, nil, err
	}
	chunks, err := collect(r.Chunks, vget, func(i int, b []byte) ([]ChunkRef, error) { return DecodeChunkList(r, i, b) }, &blocks)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewManifest(root, files, chunks)
	if err != nil {
		return nil, nil, err
	}
	return m, blocks, nil
}

// Manifest reassembles a held root's manifest from the blocks the index
// keeps, each verified again.
func (x *Index) Manifest(root cid.Cid) (*Manifest, []Block, error) {
	return AssembleManifest(root, x.Block)
}

// collect gets and decodes the list blocks behind links, in order,
// keeping each block.
func collect[T any](links []Link, get func(cid.Cid) ([]byte, error), decode func(int, []byte) ([]T, error), blocks *[]Block) ([]T, error) {
	var out []T
	for i, l := range links {
		data, err := get(l.Cid)
		if err != nil {
			return nil, err
		}
		items, err := decode(i, data)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		*blocks = append(*blocks, Block{CID: l.Cid, Data: data})
	}
	return out, nil
}
