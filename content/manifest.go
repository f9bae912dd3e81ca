package content

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

// Manifest format constants; SPEC.md states them.
const (
	// FormatVersion numbers the manifest schema.
	FormatVersion = 1
	// MaxBlock is the largest manifest block (and the largest chunk).
	MaxBlock = 1 << 20
	// FilesPerBlock is how many file entries one file-list block holds.
	FilesPerBlock = 512
	// ChunksPerBlock is how many chunk references one chunk-list block holds.
	ChunksPerBlock = 8192
	// MaxLinks caps the links of each kind in a root block.
	MaxLinks = 16384
)

// Link is a CID encoded as a dag-cbor link (CBOR tag 42).
type Link struct{ cid.Cid }

const tagCID = 42

// MarshalCBOR encodes the link as tag 42 around 0x00 followed by the CID.
func (l Link) MarshalCBOR() ([]byte, error) {
	if !l.Defined() {
		return nil, fmt.Errorf("%w: undefined link", ErrBadManifest)
	}
	return encMode.Marshal(cbor.Tag{Number: tagCID, Content: append([]byte{0}, l.Bytes()...)})
}

// UnmarshalCBOR decodes a tag-42 link and applies the CID allowlist.
func (l *Link) UnmarshalCBOR(data []byte) error {
	var t cbor.RawTag
	if err := decMode.Unmarshal(data, &t); err != nil {
		return err
	}
	if t.Number != tagCID {
		return fmt.Errorf("%w: tag %d where a link was expected", ErrBadManifest, t.Number)
	}
	var b []byte
	if err := decMode.Unmarshal(t.Content, &b); err != nil {
		return err
	}
	if len(b) < 2 || b[0] != 0 {
		return fmt.Errorf("%w: link without multibase prefix 0x00", ErrBadManifest)
	}
	c, err := CastCID(b[1:])
	if err != nil {
		return err
	}
	l.Cid = c
	return nil
}

// Root is the root block of a manifest; its CID is the model's CID.
type Root struct {
	Format  uint64 `cbor:"format"`  // FormatVersion
	Chunker uint64 `cbor:"chunker"` // ChunkerVersion
	Size    uint64 `cbor:"size"`    // total bytes of all files
	NFiles  uint64 `cbor:"nfiles"`  // number of files
	NChunks uint64 `cbor:"nchunks"` // number of chunk references
	Files   []Link `cbor:"files"`   // file-list blocks, in order
	Chunks  []Link `cbor:"chunks"`  // chunk-list blocks, in order
}

// FileList is a block of file entries.
type FileList struct {
	Files []File `cbor:"files"`
}

// File is one file of a manifest. Its chunks are the next Chunks entries of
// the manifest's chunk list.
type File struct {
	Path   string `cbor:"path"`   // relative slash path
	Size   uint64 `cbor:"size"`   // bytes
	SHA256 []byte `cbor:"sha256"` // whole-file sha256 (the Hub's LFS oid)
	Chunks uint64 `cbor:"chunks"` // number of chunks
}

// ChunkList is a block of chunk references.
type ChunkList struct {
	Chunks []ChunkRef `cbor:"chunks"`
}

// ChunkRef names one chunk and its length; encoded as a two-element array.
type ChunkRef struct {
	_   struct{} `cbor:",toarray"`
	CID Link
	Len uint64
}

// Block is an encoded block and its CID.
type Block struct {
	CID  cid.Cid
	Data []byte
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		Sort:          cbor.SortLengthFirst, // dag-cbor's canonical key order
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
	}.EncMode()
	if err != nil {
		panic(err) // static options
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  MaxLinks * 4,
		MaxMapPairs:       16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err) // static options
	}
}

// EncodeBlock encodes a manifest value (Root, FileList or ChunkList) as a
// canonical dag-cbor block, without checking it. Tests and tools use it to
// build hostile manifests; importers use Manifest.Encode.
func EncodeBlock(v any) (Block, error) { return encodeBlock(v) }

func encodeBlock(v any) (Block, error) {
	data, err := encMode.Marshal(v)
	if err != nil {
		return Block{}, err
	}
	if len(data) > MaxBlock {
		return Block{}, fmt.Errorf("%w: block of %d bytes exceeds %d", ErrBadManifest, len(data), MaxBlock)
	}
	return Block{CID: SumCID(CodecDagCBOR, data), Data: data}, nil
}

// decodeBlock decodes a block and insists it is in canonical form: encoding
// the decoded value again must give back the same bytes, so one manifest has
// exactly one encoding.
func decodeBlock(data []byte, v any) error {
	if len(data) > MaxBlock {
		return fmt.Errorf("%w: block of %d bytes exceeds %d", ErrBadManifest, len(data), MaxBlock)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	again, err := encMode.Marshal(v)
	if err != nil || !bytes.Equal(again, data) {
		return fmt.Errorf("%w: not canonical dag-cbor", ErrBadManifest)
	}
	return nil
}

// DecodeRoot decodes and checks a root block.
func DecodeRoot(data []byte) (*Root, error) {
	var r Root
	if err := decodeBlock(data, &r); err != nil {
		return nil, err
	}
	bad := func(f string, a ...any) (*Root, error) {
		return nil, fmt.Errorf("%w: "+f, append([]any{ErrBadManifest}, a...)...)
	}
	switch {
	case r.Format != FormatVersion:
		return bad("format %d (this node reads %d)", r.Format, FormatVersion)
	case r.Chunker < MinChunkerVersion || r.Chunker > ChunkerVersion:
		return bad("chunker %d (this node reads %d to %d)", r.Chunker, MinChunkerVersion, ChunkerVersion)
	case len(r.Files) > MaxLinks || len(r.Chunks) > MaxLinks:
		// What Encode never makes: a root that would have a fetcher
		// download and hold tens of thousands of list blocks.
		return bad("%d file and %d chunk blocks (at most %d each)", len(r.Files), len(r.Chunks), MaxLinks)
	case uint64(len(r.Files)) != ceilDiv(r.NFiles, FilesPerBlock):
		return bad("%d file blocks for %d files", len(r.Files), r.NFiles)
	case uint64(len(r.Chunks)) != ceilDiv(r.NChunks, ChunksPerBlock):
		return bad("%d chunk blocks for %d chunks", len(r.Chunks), r.NChunks)
	}
	for _, l := range append(append([]Link(nil), r.Files...), r.Chunks...) {
		if l.Type() != CodecDagCBOR {
			return bad("link %s is not dag-cbor", l.Cid)
		}
	}
	return &r, nil
}

// DecodeFileList decodes the i-th file-list block of root.
func DecodeFileList(r *Root, i int, data []byte) ([]File, error) {
	var fl FileList
	if err := decodeBlock(data, &fl); err != nil {
		return nil, err
	}
	if want := blockLen(r.NFiles, FilesPerBlock, i); uint64(len(fl.Files)) != want {
		return nil, fmt.Errorf("%w: file block %d holds %d entries, want %d", ErrBadManifest, i, len(fl.Files), want)
	}
	return fl.Files, nil
}

// DecodeChunkList decodes the i-th chunk-list block of root.
func DecodeChunkList(r *Root, i int, data []byte) ([]ChunkRef, error) {
	var cl ChunkList
	if err := decodeBlock(data, &cl); err != nil {
		return nil, err
	}
	if want := blockLen(r.NChunks, ChunksPerBlock, i); uint64(len(cl.Chunks)) != want {
		return nil, fmt.Errorf("%w: chunk block %d holds %d entries, want %d", ErrBadManifest, i, len(cl.Chunks), want)
	}
	for _, c := range cl.Chunks {
		if c.CID.Type() != CodecRaw || c.Len == 0 || c.Len > MaxChunk {
			return nil, fmt.Errorf("%w: chunk %s of length %d", ErrBadManifest, c.CID.Cid, c.Len)
		}
	}
	return cl.Chunks, nil
}

func ceilDiv(n, d uint64) uint64 { return (n + d - 1) / d }

func blockLen(total, per uint64, i int) uint64 {
	start := uint64(i) * per
	if start >= total {
		return 0
	}
	return min(per, total-start)
}

// Manifest is a whole decoded manifest: the files and, for each, its chunks.
type Manifest struct {
	Root   cid.Cid
	Files  []File
	Chunks []ChunkRef
	// First[i] is the index in Chunks of file i's first chunk.
	First []int
}

// FileChunks returns file i's chunk references.
func (m *Manifest) FileChunks(i int) []ChunkRef {
	return m.Chunks[m.First[i] : m.First[i]+int(m.Files[i].Chunks)]
}

// Distinct is the number of different chunks (the same chunk may stand in
// several places).
func (m *Manifest) Distinct() int {
	seen := make(map[cid.Cid]struct{}, len(m.Chunks))
	for _, c := range m.Chunks {
		seen[c.CID.Cid] = struct{}{}
	}
	return len(seen)
}

// PicklePaths lists the files in a pickle-based format (see IsPickleName).
func (m *Manifest) PicklePaths() []string {
	var out []string
	for _, f := range m.Files {
		if IsPickleName(f.Path) {
			out = append(out, f.Path)
		}
	}
	return out
}

// Size is the sum of the file sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += int64(f.Size)
	}
	return n
}

// NewManifest checks that files and chunks are consistent and safe: paths
// pass CheckPaths, every digest is 32 bytes, the per-file chunk counts add
// up to the chunk list, and each file's chunk lengths add up to its size.
func NewManifest(root cid.Cid, files []File, chunks []ChunkRef) (*Manifest, error) {
	paths := make([]string, len(files))
	first := make([]int, len(files))
	next := uint64(0)
	for i, f := range files {
		paths[i] = f.Path
		if len(f.SHA256) != 32 {
			return nil, fmt.Errorf("%w: %s: sha256 of %d bytes", ErrBadManifest, Quote(f.Path), len(f.SHA256))
		}
		if f.Chunks > uint64(len(chunks))-next {
			return nil, fmt.Errorf("%w: %s: more chunks than the manifest lists", ErrBadManifest, Quote(f.Path))
		}
		first[i] = int(next)
		var sum uint64
		for _, c := range chunks[next : next+f.Chunks] {
			sum += c.Len
		}
		if sum != f.Size {
			return nil, fmt.Errorf("%w: %s: chunks cover %d bytes, size is %d", ErrBadManifest, Quote(f.Path), sum, f.Size)
		}
		next += f.Chunks
	}
	if next != uint64(len(chunks)) {
		return nil, fmt.Errorf("%w: %d chunks listed, files use %d", ErrBadManifest, len(chunks), next)
	}
	if err := CheckPaths(paths); err != nil {
		return nil, err
	}
	return &Manifest{Root: root, Files: files, Chunks: chunks, First: first}, nil
}

// Encode splits a manifest into blocks: the root first, then file-list
// blocks, then chunk-list blocks. It sets m.Root.
func (m *Manifest) Encode() ([]Block, error) {
	if _, err := NewManifest(cid.Undef, m.Files, m.Chunks); err != nil {
		return nil, err
	}
	var blocks []Block
	root := Root{Format: FormatVersion, Chunker: ChunkerVersion, NFiles: uint64(len(m.Files)), NChunks: uint64(len(m.Chunks))}
	for _, f := range m.Files {
		root.Size += f.Size
	}
	for i := 0; i < len(m.Files); i += FilesPerBlock {
		b, err := encodeBlock(FileList{Files: m.Files[i:min(i+FilesPerBlock, len(m.Files))]})
		if err != nil {
			return nil, err
		}
		root.Files = append(root.Files, Link{b.CID})
		blocks = append(blocks, b)
	}
	for i := 0; i < len(m.Chunks); i += ChunksPerBlock {
		b, err := encodeBlock(ChunkList{Chunks: m.Chunks[i:min(i+ChunksPerBlock, len(m.Chunks))]})
		if err != nil {
			return nil, err
		}
		root.Chunks = append(root.Chunks, Link{b.CID})
		blocks = append(blocks, b)
	}
	if len(root.Files) > MaxLinks || len(root.Chunks) > MaxLinks {
		return nil, fmt.Errorf("%w: too large for one root block", ErrBadManifest)
	}
	rb, err := encodeBlock(root)
	if err != nil {
		return nil, err
	}
	m.Root = rb.CID
	return append([]Block{rb}, blocks...), nil
}
