package content

import (
	"sort"

	"github.com/ipfs/go-cid"
)

// Share is how much of a model this node holds under another root.
type Share struct {
	Root  cid.Cid `json:"root"`
	Bytes int64   `json:"bytes"` // of the model's distinct chunks
}

// Overlap reports how much of m this node already holds under other roots
// (a fine-tune's base model, another version): the bytes of m's distinct
// chunks held, in all and by root (most first), and the bytes of its
// distinct chunks in all. A fetch copies what is held and fetches the
// rest. want, if set, keeps only the chunk references (by index in m's
// list) a fetch of part of m asks for.
func (x *Index) Overlap(m *Manifest, want func(i int) bool) (shares []Share, held, distinct int64) {
	seen := make(map[cid.Cid]bool, len(m.Chunks))
	byRoot := map[cid.Cid]int64{}
	for i, c := range m.Chunks {
		if seen[c.CID.Cid] || (want != nil && !want(i)) {
			continue
		}
		seen[c.CID.Cid] = true
		distinct += int64(c.Len)
		counted := map[cid.Cid]bool{}
		for _, l := range x.Locs(c.CID.Cid) {
			if l.Root.Equals(m.Root) || counted[l.Root] {
				continue
			}
			counted[l.Root] = true
			byRoot[l.Root] += int64(c.Len)
		}
		if len(counted) > 0 {
			held += int64(c.Len)
		}
	}
	for r, n := range byRoot {
		shares = append(shares, Share{Root: r, Bytes: n})
	}
	sort.Slice(shares, func(i, j int) bool {
		if shares[i].Bytes != shares[j].Bytes {
			return shares[i].Bytes > shares[j].Bytes
		}
		return shares[i].Root.KeyString() < shares[j].Root.KeyString()
	})
	return shares, held, distinct
}
