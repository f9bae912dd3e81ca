package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
)

// Signer describes a verified record, with the petname h gives its key.
func Signer(h home.Home, s *content.Signed) api.Signer {
	sg := api.Signer{Key: s.Key, Name: s.Name, Root: s.Root.Cid, Seq: s.Seq, Time: time.Unix(s.Time, 0).UTC()}
	if s.Expires != 0 {
		sg.Expires = time.Unix(s.Expires, 0).UTC()
	}
	for pet, id := range h.Trusted() {
		if id == s.Key {
			sg.Petname = pet
		}
	}
	return sg
}

// MinTTL is the shortest life a record may be given (0: it never
// expires).
const MinTTL = time.Minute

// CheckTTL accepts 0 (the record never expires) or at least MinTTL. A
// negative TTL would otherwise make a record that never expires, and one
// of seconds a name that stops resolving before it spreads. The CLI and
// the API check it; Publish itself refuses only a negative TTL.
func CheckTTL(ttl time.Duration) error {
	if ttl != 0 && ttl < MinTTL {
		return fmt.Errorf("%w: %s (a record must live at least 1m, or 0 for one that never expires)", ErrBadTTL, ttl)
	}
	return nil
}

// recordTimeout bounds DHT record lookups and puts.
const recordTimeout = 30 * time.Second

// Publish signs a record naming root as name with key, keeps it, and puts
// it on the DHT. The sequence is one above the highest this node has seen
// for that name, locally or on the DHT.
// Published is a record signed and kept here, and whether it reached the
// DHT: NotOnDHT says why not (no DHT peers yet, say). A daemon's
// announcer keeps putting kept records on the DHT.
type Published struct {
	Record   *content.Signed
	NotOnDHT error
	// Gossiped counts the peers in the publisher's topic the record was
	// sent to (a daemon only).
	Gossiped int
}

func (n *Node) Publish(ctx context.Context, key crypto.PrivKey, name string, root cid.Cid, ttl time.Duration) (*Published, error) {
	if err := content.CheckName(name); err != nil {
		return nil, err
	}
	if ttl < 0 {
		return nil, fmt.Errorf("%w: %s is negative", ErrBadTTL, ttl)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	seq := n.Index.HighWater(id.String(), name)
	if cur, err := n.lookupRecord(ctx, id.String(), name); err == nil {
		seq = max(seq, cur.Seq)
	}
	s, err := content.Sign(key, name, root, seq+1, time.Now(), ttl)
	if err != nil {
		return nil, err
	}
	if err := n.Index.PutRecord(s); err != nil {
		return nil, err
	}
	gossiped := 0
	if n.follower != nil {
		gossiped = n.follower.Announce(s) // mirrors following this key hear of it in seconds
	}
	pctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if err := n.putValue(pctx, content.RecordKey(s.Key, name), s.Envelope); err != nil {
		return &Published{Record: s, Gossiped: gossiped, NotOnDHT: err}, nil
	}
	return &Published{Record: s, Gossiped: gossiped}, nil
}

// lookupRecord asks the DHT for a name's best record and checks it. The
// search streams better and better records; once one is in, it waits
// recordGrace more for a better one, not for every peer on the way to
// answer (a peer that just went away can hold a lookup for its dial
// timeout).
func (n *Node) lookupRecord(ctx context.Context, keyID, name string) (*content.Signed, error) {
	gctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	ch, err := n.DHT.SearchValue(gctx, content.RecordKey(keyID, name))
	if err != nil {
		return nil, err
	}
	var best []byte
	var grace <-chan time.Time
	for done := false; !done; {
		select {
		case b, ok := <-ch:
			if !ok {
				done = true
				break
			}
			best = b // each value the search sends beats the last
			if grace == nil {
				grace = time.After(recordGrace)
			}
		case <-grace:
			done = true
		case <-gctx.Done():
			done = true
		}
	}
	if best == nil {
		if gctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w (searched for %s)", ErrNoRecord, recordTimeout)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrNoRecord
	}
	s, err := content.OpenRecord(best)
	if err != nil {
		return nil, err
	}
	if s.Key != keyID || s.Name != name {
		return nil, fmt.Errorf("%w: DHT answered with a record for %s/%s", content.ErrBadRecord, s.Key, s.Name)
	}
	return s, nil
}

// recordGrace is how long a record lookup waits for a better record once
// it holds one.
const recordGrace = time.Second

// Resolve finds what keyID publishes as name: the newest valid record from
// the DHT or kept here. It never goes below the highest sequence this node
// has seen (a DHT serving only older records gets ErrRollback when no
// newer one is kept), and an expired newest record fails the name closed
// (ErrExpired); fetching by CID is unaffected.
func (n *Node) Resolve(ctx context.Context, keyID, name string) (*content.Signed, error) {
	if err := content.CheckName(name); err != nil {
		return nil, err
	}
	local, _ := n.Index.Record(keyID, name)
	remote, rerr := n.lookupRecord(ctx, keyID, name)
	best := local
	if remote != nil && (best == nil || remote.Seq > best.Seq) {
		best = remote
	}
	if best == nil {
		if rerr == nil {
			rerr = ErrNoRecord
		}
		return nil, fmt.Errorf("%s/%s: %w", keyID, name, rerr)
	}
	if hw := n.Index.HighWater(keyID, name); best.Seq < hw {
		return nil, fmt.Errorf("%w: %s/%s: have seen sequence %d, the DHT offers %d", content.ErrRollback, keyID, name, hw, best.Seq)
	}
	if remote != nil && local != nil && remote.Seq < local.Seq {
		n.log.Warn("the DHT offered an older record than one kept here", "name", keyID+"/"+name, "dht", remote.Seq, "kept", local.Seq)
	}
	if err := best.Live(time.Now()); err != nil {
		return nil, err
	}
	if err := n.Index.PutRecord(best); err != nil {
		return nil, err
	}
	return best, nil
}

// takeRecords checks envelopes handed over with a manifest and keeps the
// valid, live ones naming root that are not older than what was seen.
func (n *Node) takeRecords(root cid.Cid, envs [][]byte) {
	for _, e := range envs {
		s, err := content.OpenRecord(e)
		if err != nil || s.Root.Cid != root || s.Live(time.Now()) != nil {
			if err != nil {
				n.log.Debug("refused a record", "err", err)
			}
			continue
		}
		_ = n.Index.PutRecord(s) // an older one is refused: fine
	}
}

// signers lists the keys with a valid, live record naming root kept
// here, one entry per key (its newest record): a key that signs twice is
// still one signer. Each signature is checked again (RecordsFor does not):
// this is what verify and get report to the user, once per command.
func signers(h home.Home, idx *content.Index, root cid.Cid) []api.Signer {
	best := map[string]*content.Signed{}
	for _, s := range idx.RecordsFor(root) {
		if s.Live(time.Now()) != nil {
			continue
		}
		if _, err := content.OpenRecord(s.Envelope); err != nil {
			continue
		}
		if b := best[s.Key]; b == nil || s.Time > b.Time || (s.Time == b.Time && s.Seq > b.Seq) {
			best[s.Key] = s
		}
	}
	out := make([]api.Signer, 0, len(best))
	for _, s := range best {
		out = append(out, Signer(h, s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
