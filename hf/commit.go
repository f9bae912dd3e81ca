package hf

import (
	"encoding/hex"
	"sync"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// commitHexLen is the length of a commit hash in text: 40 lowercase hex
// digits, the shape of a git commit id.
const commitHexLen = 40

// Commit is the commit hash the endpoint reports for a model root, as
// `sha` in model info, as X-Repo-Commit and as lastCommit.id: the lowercase
// hex of the first 20 bytes of the root's sha2-256 digest. Hugging Face
// clients expect a 40-hex git commit id there and name the snapshot folder
// of their cache after it. It is a one-way function of the root; the
// endpoint maps a commit back to a root by comparing it with the commits of
// the roots it has resolved. Commit returns "" for a CID whose multihash is
// not sha2-256 (Shoal accepts no such root).
func Commit(root cid.Cid) string {
	if !root.Defined() {
		return ""
	}
	dm, err := mh.Decode(root.Hash())
	if err != nil || dm.Code != mh.SHA2_256 || len(dm.Digest) < commitHexLen/2 {
		return ""
	}
	return hex.EncodeToString(dm.Digest[:commitHexLen/2])
}

// isCommitHash says whether rev has the form of a commit hash.
func isCommitHash(rev string) bool {
	if len(rev) != commitHexLen {
		return false
	}
	for i := range len(rev) {
		c := rev[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// commitMemoSize is how many (repo, commit) pairs the endpoint remembers.
const commitMemoSize = 4096

// commitKey is a commit hash handed out for a repo.
type commitKey struct{ repo, commit string }

// commitMemo remembers the last n roots whose commits the endpoint has
// handed out, per repo, so that a client naming one of those commits as a
// revision (as every client does after its first request) is answered
// even when the repo's "main" has moved on since. The oldest pair is
// forgotten first.
type commitMemo struct {
	mu    sync.Mutex
	roots map[commitKey]cid.Cid
	ring  []commitKey // insertion order, oldest at next once full
	next  int
}

func newCommitMemo(n int) *commitMemo {
	return &commitMemo{roots: make(map[commitKey]cid.Cid, n), ring: make([]commitKey, 0, n)}
}

// put records that commit (of root) was handed out for repo.
func (c *commitMemo) put(repo, commit string, root cid.Cid) {
	k := commitKey{repo, commit}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.roots[k]; ok || cap(c.ring) == 0 {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.roots, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.roots[k] = root
}

// get returns the root whose commit was handed out for repo.
func (c *commitMemo) get(repo, commit string) (cid.Cid, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.roots[commitKey{repo, commit}]
	return r, ok
}
