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

// Shared is what of a model this node already holds under other roots (a
// fine-tune's base model, another version): a fetch copies it and
// fetches the rest.
type Shared struct {
	Shares   []Share // by root, most first
	Held     int64   // bytes of the model's distinct chunks held
	Distinct int64   // bytes of the model's distinct chunks in all
	// Bits marks the chunk references (in m's list) held, as a have-map
	// does.
	Bits []byte
}

// Overlap reports what of m this node holds under other roots. want, if
// set, keeps only the chunk references (by index in m's list) a fetch of
// part of m asks for.
func (x *Index) Overlap(m *Manifest, want func(i int) bool) Shared {
	sh := Shared{Bits: make([]byte, (len(m.Chunks)+7)/8)}
	held := make(map[cid.Cid]bool, len(m.Chunks)) // looked up: held or not
	byRoot := map[cid.Cid]int64{}
	for i, c := range m.Chunks {
		if want != nil && !want(i) {
			continue
		}
		ok, seen := held[c.CID.Cid]
		if !seen {
			sh.Distinct += int64(c.Len)
			counted := map[cid.Cid]bool{}
			for _, l := range x.Locs(c.CID.Cid) {
				if l.Root.Equals(m.Root) || counted[l.Root] {
					continue
				}
				counted[l.Root] = true
				byRoot[l.Root] += int64(c.Len)
			}
			ok = len(counted) > 0
			held[c.CID.Cid] = ok
			if ok {
				sh.Held += int64(c.Len)
			}
		}
		if ok {
			sh.Bits[i/8] |= 1 << (i % 8)
		}
	}
	for r, n := range byRoot {
		sh.Shares = append(sh.Shares, Share{Root: r, Bytes: n})
	}
	sort.Slice(sh.Shares, func(i, j int) bool {
		if sh.Shares[i].Bytes != sh.Shares[j].Bytes {
			return sh.Shares[i].Bytes > sh.Shares[j].Bytes
		}
		return sh.Shares[i].Root.KeyString() < sh.Shares[j].Root.KeyString()
	})
	return sh
}
