package node

import (
	"crypto/sha256"
	"io"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// checkFileKeys hashes, in the background, each file of a fetched root
// whose key would be announced but whose sha256 is still the manifest's
// word (a fetch verifies every chunk, not whole files), and announces the
// keys of those that match. A file whose bytes do not hash to what the
// manifest says (the manifest's author lied or erred; the chunks are still
// right) keeps its key unannounced: this node must not claim to hold a
// file it does not. One check runs at a time, at the node's pace.
func (n *Node) checkFileKeys(root cid.Cid) {
	n.wg.Go(func() {
		n.keyCheck.Lock()
		defer n.keyCheck.Unlock()
		info, err := n.Index.Root(root)
		if err != nil {
			return
		}
		marked := false
		for _, p := range info.Places {
			files, _ := n.Index.PlaceFiles(root, p.Dir)
			for i, f := range files {
				if f.Unchecked && f.Size >= content.FileKeyMin && n.ctx.Err() == nil && n.checkFileKey(root, p.Dir, uint32(i), f) {
					marked = true
				}
			}
		}
		if marked && n.ann != nil {
			n.ann.add(root) // now with the file keys
		}
	})
}

// checkFileKey hashes one file of root in folder dir and marks it checked
// when it matches.
func (n *Node) checkFileKey(root cid.Cid, dir string, i uint32, f content.FileInfo) bool {
	ok, err := hashesTo(f.Path, f.SHA256, n.ctx.Done())
	if err != nil {
		n.log.Debug("checking a file key", "file", f.Path, "err", err)
		return false
	}
	if !ok {
		n.log.Warn("a fetched file does not hash to the sha256 its manifest gives; its file key is not announced",
			"root", root, "file", content.Escape(f.Rel))
		return false
	}
	return n.Index.MarkChecked(root, dir, i) == nil
}

// hashesTo reports whether the file at path hashes to sum; it stops when
// stop is closed.
func hashesTo(path string, sum []byte, stop <-chan struct{}) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, content.MaxChunk)
	for {
		select {
		case <-stop:
			return false, io.ErrUnexpectedEOF
		default:
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
	}
	return string(h.Sum(nil)) == string(sum), nil
}
