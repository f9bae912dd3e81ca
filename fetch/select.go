package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// Choice is the part of a model a user asks for: files by pattern, and
// within safetensors and GGUF files, tensors by pattern. The zero Choice is the
// whole model.
type Choice struct {
	Include []string `json:"include,omitempty"` // files to fetch (all when empty)
	Exclude []string `json:"exclude,omitempty"` // files to leave out
	Tensors []string `json:"tensors,omitempty"` // tensors to keep (all when empty)
}

// Whole reports whether the choice is the whole model.
func (c Choice) Whole() bool {
	return len(c.Include) == 0 && len(c.Exclude) == 0 && len(c.Tensors) == 0
}

// Check refuses a malformed pattern before anything starts.
func (c Choice) Check() error {
	return content.CheckGlobs(append(append(append([]string(nil), c.Include...), c.Exclude...), c.Tensors...))
}

// filePart is what of one file a fetch writes.
type filePart struct {
	skip bool // left out
	// chunks, if not nil, are the only chunks of the file fetched (by
	// index within the file); its temporary copy then holds them in place
	// and rewrite makes the output from it.
	chunks  []bool
	rewrite func(tmp io.ReaderAt, out io.Writer) error
}

// selection is the part of a model a fetch writes: one part per file of
// the manifest.
type selection []filePart

// fetched is the bytes the selection fetches (before any rewrite).
func (s selection) fetched(m *content.Manifest) int64 {
	var n int64
	for i, p := range s {
		switch {
		case p.skip:
		case p.chunks == nil:
			n += int64(m.Files[i].Size)
		default:
			for k, c := range m.FileChunks(i) {
				if p.chunks[k] {
					n += int64(c.Len)
				}
			}
		}
	}
	return n
}

// wants says which of m's chunk references the selection fetches (nil:
// all of them).
func (s selection) wants(m *content.Manifest) func(i int) bool {
	if s == nil {
		return nil
	}
	file := make([]int, len(m.Chunks)) // chunk reference → its file
	for f := range m.Files {
		for k := range m.FileChunks(f) {
			file[m.First[f]+k] = f
		}
	}
	return func(i int) bool {
		p := s[file[i]]
		return !p.skip && (p.chunks == nil || p.chunks[i-m.First[file[i]]])
	}
}

// choose turns a choice into a selection of m's files and chunks. For
// tensors it reads each safetensors file's header (a few chunks, from
// this node or the sources found so far).
func (e *Engine) choose(ctx context.Context, m *content.Manifest, c Choice, sources []*source) (selection, error) {
	want, err := content.SelectFiles(m, c.Include, c.Exclude)
	if err != nil {
		return nil, err
	}
	sel := make(selection, len(m.Files))
	for i, ok := range want {
		sel[i] = filePart{skip: !ok}
	}
	if len(c.Tensors) == 0 {
		return sel, nil
	}
	match := func(name string) bool {
		for _, p := range c.Tensors {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	matched := false
	kept := map[string]int64{} // tensor → bytes, for a sharded model's index
	for i, f := range m.Files {
		if sel[i].skip || !(content.IsSafetensorsName(f.Path) || content.IsGGUFName(f.Path)) {
			continue
		}
		sub, err := e.tensorSubset(ctx, m, i, match, sources)
		if errors.Is(err, content.ErrNoMatch) {
			sel[i].skip = true // a shard holding none of them
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", content.Quote(f.Path), err)
		}
		matched = true
		for k, name := range sub.Names {
			kept[name] = sub.Ranges[k].Len
		}
		chunks := make([]bool, f.Chunks)
		var off int64
		for k, ref := range m.FileChunks(i) {
			end := off + int64(ref.Len)
			chunks[k] = overlaps(off, end, sub)
			off = end
		}
		sel[i] = filePart{chunks: chunks, rewrite: sub.Write}
	}
	if !matched {
		return nil, fmt.Errorf("--tensors %s %w among the tensors of the safetensors and GGUF files of %s (shoal inspect lists them)",
			content.Quote(strings.Join(c.Tensors, " ")), content.ErrNoMatch, m.Root)
	}
	// A sharded model's index names every tensor's shard: it keeps only
	// those written, or a loader would look for the others.
	for i, f := range m.Files {
		if !sel[i].skip && content.IsSafetensorsIndexName(f.Path) && f.Size <= content.MaxSafetensorsIndex {
			sel[i].rewrite = func(tmp io.ReaderAt, out io.Writer) error {
				data := make([]byte, f.Size)
				if _, err := tmp.ReadAt(data, 0); err != nil {
					return err
				}
				b, err := content.SafetensorsIndexSubset(data, kept)
				if err != nil {
					return err
				}
				_, err = out.Write(b)
				return err
			}
		}
	}
	return sel, nil
}

// haveFiles leaves out of sel (nil: the whole model) the files the caller
// has; nil still if it has none.
func haveFiles(m *content.Manifest, sel selection, have func(content.File) bool) selection {
	for i, f := range m.Files {
		if (sel != nil && sel[i].skip) || !have(f) {
			continue
		}
		if sel == nil {
			sel = make(selection, len(m.Files))
		}
		sel[i] = filePart{skip: true}
	}
	return sel
}

// overlaps reports whether [off, end) holds bytes of a kept tensor (the
// header was read already, and is written anew).
func overlaps(off, end int64, sub *content.TensorSubset) bool {
	for _, r := range sub.Ranges {
		if off < r.Off+r.Len && r.Off < end {
			return true
		}
	}
	return false
}

// tensorSubset reads the header of weights file i of m (safetensors or
// GGUF) and cuts it down to the tensors match accepts.
func (e *Engine) tensorSubset(ctx context.Context, m *content.Manifest, i int, match func(string) bool, sources []*source) (*content.TensorSubset, error) {
	return content.Subset(m.Files[i].Path, e.chunkReader(ctx, m, i, sources), int64(m.Files[i].Size), match)
}

// chunkReader reads file i of m through readChunks, keeping the last
// chunk it read: for headers, a few chunks at the start of a file.
func (e *Engine) chunkReader(ctx context.Context, m *content.Manifest, i int, sources []*source) io.ReaderAt {
	return &chunkReader{ctx: ctx, e: e, refs: m.FileChunks(i), sources: sources, last: -1}
}

type chunkReader struct {
	ctx     context.Context
	e       *Engine
	refs    []content.ChunkRef
	sources []*source
	last    int
	data    []byte
}

// ReadAt reads len(p) bytes at off, fetching the chunks they are in.
func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	var start int64
	for k, ref := range r.refs {
		end := start + int64(ref.Len)
		if n < len(p) && off+int64(n) < end && off+int64(n) >= start {
			if r.last != k {
				got, err := r.e.readChunks(r.ctx, r.refs[k:k+1], r.sources)
				if err != nil {
					return n, err
				}
				r.last, r.data = k, got[0]
			}
			n += copy(p[n:], r.data[off+int64(n)-start:])
		}
		start = end
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readChunks reads chunks before the fetch proper (a header), each
// verified: from this node's index, else from each source found so far
// in turn.
func (e *Engine) readChunks(ctx context.Context, refs []content.ChunkRef, sources []*source) ([][]byte, error) {
	out := make([][]byte, len(refs))
	for k, r := range refs {
		c, n := r.CID.Cid, int(r.Len)
		if b, err := e.idx.ReadChunk(c, make([]byte, n)); err == nil {
			out[k] = b
			continue
		}
		var last error = ErrNoSource
		for _, s := range sources {
			if s.conn == nil {
				continue
			}
			b, err := s.get(ctx, c, n)
			if err == nil && len(b) != n {
				err = fmt.Errorf("%w: chunk %s is %d bytes, manifest says %d", content.ErrHashMismatch, c, len(b), n)
			}
			if err == nil {
				err = content.VerifyBlock(c, b)
			}
			if err == nil {
				out[k] = append([]byte(nil), b...)
			}
			protocol.Recycle(b)
			if err == nil {
				break
			}
			last = err
		}
		if out[k] == nil {
			return nil, fmt.Errorf("reading chunk %s: %w", c, last)
		}
	}
	return out, nil
}

// Inspect describes root from its manifest and the headers of its weights
// files (held here, or asked of the peers that hold it): its files, their
// tensors, and how much of it this node holds under other roots. No
// weights move.
func (e *Engine) Inspect(ctx context.Context, root cid.Cid) (*content.ModelView, error) {
	view := &content.ModelView{Root: root}
	err := e.withManifest(ctx, root, func(m *content.Manifest, local bool, sources []*source) error {
		view.Size, view.Local = m.Size(), local
		for i, f := range m.Files {
			view.Files = append(view.Files, content.Describe(f.Path, f.SHA256, e.chunkReader(ctx, m, i, sources), int64(f.Size)))
		}
		sh := e.idx.Overlap(m, nil)
		view.Shares, view.Held, view.Distinct = sh.Shares, sh.Held, sh.Distinct
		return nil
	})
	if err != nil {
		return nil, err
	}
	return view, nil
}

// Manifest returns root's manifest: the index's, or fetched from the
// peers that hold it, every block verified.
func (e *Engine) Manifest(ctx context.Context, root cid.Cid) (*content.Manifest, error) {
	var out *content.Manifest
	err := e.withManifest(ctx, root, func(m *content.Manifest, _ bool, _ []*source) error {
		out = m
		return nil
	})
	return out, err
}

// withManifest hands use root's manifest (local: from the index) and the
// sources met while finding it, which it may read chunks from until it
// returns.
func (e *Engine) withManifest(ctx context.Context, root cid.Cid, use func(m *content.Manifest, local bool, sources []*source) error) error {
	if err := content.CheckRoot(root); err != nil {
		return err
	}
	if m, _, err := e.idx.Manifest(root); err == nil {
		return use(m, true, nil)
	}
	var early []*source
	defer func() {
		for _, s := range early {
			s.close()
		}
	}()
	dctx, stop := context.WithCancel(ctx)
	disc := e.discover(dctx, root)
	defer func() { stop(); disc.wait() }()
	m, _, err := e.raceManifest(ctx, root, disc, time.Now(), &early, func(Progress) {})
	if err != nil {
		return err
	}
	return use(m, false, early)
}
