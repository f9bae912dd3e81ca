package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
)

// Added reports an import, with its manifest for callers in this
// process.
type Added struct {
	api.AddResult
	M *content.Manifest `json:"-"`
}

// newAdded summarizes an import.
func newAdded(im *content.Imported) *Added {
	return &Added{M: im.M, AddResult: api.AddResult{Root: im.M.Root, Name: im.Name, Files: len(im.Files), Size: im.M.Size(),
		Skipped: im.Skipped, Warnings: im.Warnings, Pickle: content.PickleFiles(im.Files)}}
}

// AddOffline imports path into the index without a running node: it is
// announced when a daemon next starts.
func AddOffline(ctx context.Context, idx *content.Index, path string, opt content.ImportOptions) (*Added, error) {
	im, err := content.Import(ctx, path, opt)
	if err != nil {
		return nil, err
	}
	if err := idx.Put(im.Held(content.SourceAdded)); err != nil {
		return nil, err
	}
	// What a user adds is what they mean to serve: kept until unpinned.
	if err := idx.PinRoot(im.M.Root, "add"); err != nil {
		return nil, err
	}
	return newAdded(im), nil
}

// Verify re-reads every file of a held root and checks each chunk and the
// whole-file sha256 against the manifest, and every kept record naming
// the root against its signature. progress is told of bytes read.
func Verify(ctx context.Context, h home.Home, idx *content.Index, root cid.Cid, progress func(int64)) (*api.VerifyReport, error) {
	files, err := heldFiles(idx, root)
	if err != nil {
		return nil, err
	}
	m, err := loadManifest(idx, root)
	if err != nil {
		return nil, err
	}
	rep := &api.VerifyReport{Root: root, OK: true, Signers: signers(h, idx, root)}
	for i, fi := range files {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		v := api.VerifyFile{Path: fi.Rel, Status: "ok"}
		if err := verifyFile(fi, m.FileChunks(i), progress); err != nil {
			v.Status, v.Detail = err.status, err.detail
			rep.OK = false
		}
		rep.Files = append(rep.Files, v)
	}
	return rep, nil
}

type verdict struct{ status, detail string }

func verifyFile(fi content.FileInfo, chunks []content.ChunkRef, progress func(int64)) *verdict {
	f, err := os.Open(fi.Path)
	if err != nil {
		return &verdict{"missing", err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &verdict{"missing", err.Error()}
	}
	if st.Size() != fi.Size {
		return &verdict{"corrupt", fmt.Sprintf("%d bytes, the model says %d", st.Size(), fi.Size)}
	}
	var changed *verdict
	if !fi.Unchanged(st) {
		changed = &verdict{"changed", "modification time differs from when it was added; not served"}
	}
	whole := sha256.New()
	buf := make([]byte, content.MaxChunk)
	var off int64
	for k, c := range chunks {
		b := buf[:c.Len]
		if _, err := io.ReadFull(f, b); err != nil {
			return &verdict{"corrupt", fmt.Sprintf("short read at byte %d: %v", off, err)}
		}
		whole.Write(b)
		if err := content.VerifyBlock(c.CID.Cid, b); err != nil {
			return &verdict{"corrupt", fmt.Sprintf("chunk %d (bytes %d–%d) does not match", k, off, off+int64(c.Len))}
		}
		off += int64(c.Len)
		if progress != nil {
			progress(int64(c.Len))
		}
	}
	if string(whole.Sum(nil)) != string(fi.SHA256) {
		return &verdict{"corrupt", "whole-file sha256 differs"}
	}
	if changed != nil {
		changed.detail = "bytes still match, but " + changed.detail
		return changed
	}
	return nil
}

// loadManifest reassembles a held manifest from the index.
func loadManifest(idx *content.Index, root cid.Cid) (*content.Manifest, error) {
	m, _, err := idx.Manifest(root)
	return m, err
}
