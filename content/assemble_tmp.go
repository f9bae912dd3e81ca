package content

import "github.com/ipfs/go-cid"

// AssembleManifest (stand-in until the content branch lands).
func AssembleManifest(root cid.Cid, get func(cid.Cid) ([]byte, error)) (*Manifest, []Block, error) {
	vget := func(c cid.Cid) ([]byte, error) {
		b, err := get(c)
		if err != nil {
			return nil, err
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
	var files []File
	for i, l := range r.Files {
		b, err := vget(l.Cid)
		if err != nil {
			return nil, nil, err
		}
		fs, err := DecodeFileList(r, i, b)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, fs...)
		blocks = append(blocks, Block{CID: l.Cid, Data: b})
	}
	var chunks []ChunkRef
	for i, l := range r.Chunks {
		b, err := vget(l.Cid)
		if err != nil {
			return nil, nil, err
		}
		cs, err := DecodeChunkList(r, i, b)
		if err != nil {
			return nil, nil, err
		}
		chunks = append(chunks, cs...)
		blocks = append(blocks, Block{CID: l.Cid, Data: b})
	}
	m, err := NewManifest(root, files, chunks)
	if err != nil {
		return nil, nil, err
	}
	return m, blocks, nil
}

// Manifest (stand-in).
func (x *Index) Manifest(root cid.Cid) (*Manifest, []Block, error) {
	return AssembleManifest(root, x.Block)
}
