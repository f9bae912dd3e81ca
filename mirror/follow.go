package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
)

// Topics: one a publisher, carrying its signed records, each message one
// record envelope exactly as it is put on the DHT.
const topicPrefix = "shoal/records/1/"

// maxRecordMessage bounds a gossiped message; a record is a few hundred
// bytes.
const maxRecordMessage = 8 << 10

// maxTopicsPerPeer bounds the subscriptions one peer may announce at once.
const maxTopicsPerPeer = 256

var topicRE = regexp.MustCompile(`^` + regexp.QuoteMeta(topicPrefix) + `[1-9A-HJ-NP-Za-km-z]{32,64}$`)

// Topic is the gossipsub topic of a publisher's records.
func Topic(keyID string) string { return topicPrefix + keyID }

// NewPubSub starts gossipsub on h for Shoal's record topics only, finding
// a topic's other peers through disc (the DHT) when it is set.
func NewPubSub(ctx context.Context, h host.Host, disc discovery.Discovery) (*pubsub.PubSub, error) {
	opts := []pubsub.Option{
		pubsub.WithMaxMessageSize(maxRecordMessage),
		pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(pubsub.NewRegexpSubscriptionFilter(topicRE), maxTopicsPerPeer)),
	}
	if disc != nil {
		opts = append(opts, pubsub.WithDiscovery(disc))
	}
	return pubsub.NewGossipSub(ctx, h, opts...)
}

// Follower follows publishers for a daemon: it subscribes to their
// topics, checks each record before it is relayed, keeps the new ones and
// has their roots fetched and pinned. It republishes the records it keeps
// on the topics it is in (so that a peer back from offline catches up),
// and asks the DHT for followed names now and then.
type Follower struct {
	Index *content.Index
	PS    *pubsub.PubSub
	Self  peer.ID
	// Pin fetches (if need be) and pins root for reason.
	Pin func(ctx context.Context, root cid.Cid, reason string) error
	// Resolve asks the DHT (and the index) for a name's newest record.
	Resolve func(ctx context.Context, keyID, name string) (*content.Signed, error)
	// Check is how often followed names are looked up on the DHT;
	// Republish how often kept records are gossiped again.
	Check, Republish time.Duration
	Log              *slog.Logger

	rejected atomic.Int64
	mu       sync.Mutex
	topics   map[string]*joined // by key ID
	ensuring map[cid.Cid]bool
	failed   map[cid.Cid]string // root → why its last fetch failed
	wg       sync.WaitGroup
	spawnMu  sync.Mutex
	closed   bool
	ctx      context.Context
}

type joined struct {
	topic    *pubsub.Topic
	sub      *pubsub.Subscription // nil: joined to publish only
	cancel   context.CancelFunc
	lastPush time.Time
}

// Failures lists the followed roots whose last fetch failed, and why
// (tried again at the next check or record).
func (f *Follower) Failures() map[cid.Cid]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[cid.Cid]string, len(f.failed))
	for r, why := range f.failed {
		out[r] = why
	}
	return out
}

// Rejected counts records refused over gossip (bad signature, wrong
// publisher, not decodable): dropped, and not relayed.
func (f *Follower) Rejected() int64 { return f.rejected.Load() }

// Start joins the topics of the followed publishers and of own keys
// (to publish), catches up with what the index says, and runs the check
// and republish loops until ctx ends.
func (f *Follower) Start(ctx context.Context, own []string) error {
	f.ctx = ctx
	f.topics = map[string]*joined{}
	f.ensuring = map[cid.Cid]bool{}
	f.failed = map[cid.Cid]string{}
	for _, k := range own {
		if _, err := f.join(k, false); err != nil {
			return err
		}
	}
	follows, err := f.Index.Follows()
	if err != nil {
		return err
	}
	for _, fl := range follows {
		if err := f.Follow(fl.Key); err != nil {
			return err
		}
	}
	f.spawn(func() { f.loop(ctx) })
	return nil
}

// Wait waits for the follower's goroutines after its context ended; none
// starts after.
func (f *Follower) Wait() {
	f.spawnMu.Lock()
	f.closed = true
	f.spawnMu.Unlock()
	f.wg.Wait()
}

// spawn runs fn in a goroutine Wait waits for, unless Wait was called.
func (f *Follower) spawn(fn func()) {
	f.spawnMu.Lock()
	defer f.spawnMu.Unlock()
	if f.closed {
		return
	}
	f.wg.Go(fn)
}

// Follow subscribes to a publisher's topic and fetches what its kept
// records name.
func (f *Follower) Follow(key string) error {
	if _, err := f.join(key, true); err != nil {
		return err
	}
	for _, s := range f.records(key) {
		f.ensure(s)
	}
	return nil
}

// Unfollow unsubscribes from a publisher's topic; the node stays joined
// (it may still publish or relay there) until it restarts.
func (f *Follower) Unfollow(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j := f.topics[key]; j != nil && j.sub != nil {
		j.sub.Cancel()
		j.cancel()
		j.sub = nil
	}
}

// Announce gossips a record this node just signed or kept, and says to
// how many peers in the publisher's topic.
func (f *Follower) Announce(s *content.Signed) int {
	j, err := f.join(s.Key, false)
	if err != nil {
		f.Log.Debug("gossip a record", "err", err)
		return 0
	}
	if err := j.topic.Publish(f.ctx, s.Envelope); err != nil {
		f.Log.Debug("gossip a record", "name", s.Key+"/"+s.Name, "err", err)
		return 0
	}
	return len(j.topic.ListPeers())
}

// join joins a publisher's topic once, with its validator, and
// subscribes when sub is set.
func (f *Follower) join(key string, sub bool) (*joined, error) {
	if !topicRE.MatchString(Topic(key)) {
		return nil, fmt.Errorf("%w: %q is not a publisher key", content.ErrBadRecord, key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.topics[key]
	if j == nil {
		if err := f.PS.RegisterTopicValidator(Topic(key), f.validator(key)); err != nil {
			return nil, err
		}
		t, err := f.PS.Join(Topic(key))
		if err != nil {
			_ = f.PS.UnregisterTopicValidator(Topic(key))
			return nil, err
		}
		// Relay: advertise the topic (on the DHT) and tell peers this
		// node is in it, subscribed or not, so that followers find a
		// publisher and the records pass through it.
		if _, err := t.Relay(); err != nil {
			return nil, err
		}
		j = &joined{topic: t, cancel: func() {}}
		f.topics[key] = j
		f.watchJoins(key, t)
	}
	if sub && j.sub == nil {
		s, err := j.topic.Subscribe()
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(f.ctx)
		j.sub, j.cancel = s, cancel
		f.spawn(func() { f.read(ctx, s) })
	}
	return j, nil
}

// validator checks a gossiped record before it is delivered or relayed:
// a bad one is rejected (and its sender penalized); one older than or
// the same as what is kept is ignored (not relayed: everyone near has
// it), except when this node sends it.
func (f *Follower) validator(key string) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		s, err := content.OpenRecord(msg.Data)
		if err != nil || s.Key != key {
			f.rejected.Add(1)
			f.Log.Debug("refused a gossiped record", "from", from, "topic", key, "err", err)
			return pubsub.ValidationReject
		}
		if from == f.Self {
			return pubsub.ValidationAccept
		}
		if s.Live(time.Now()) != nil {
			return pubsub.ValidationIgnore
		}
		hw := f.Index.HighWater(s.Key, s.Name)
		if s.Seq < hw {
			return pubsub.ValidationIgnore
		}
		if s.Seq == hw {
			// The same record, or one that loses to it: nothing new.
			if kept, err := f.Index.Record(s.Key, s.Name); err == nil && !s.Beats(kept) {
				return pubsub.ValidationIgnore
			}
		}
		return pubsub.ValidationAccept
	}
}

// read takes the records a subscription delivers.
func (f *Follower) read(ctx context.Context, s *pubsub.Subscription) {
	for {
		msg, err := s.Next(ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == f.Self {
			continue
		}
		rec, err := content.OpenRecord(msg.Data)
		if err != nil {
			continue
		}
		if err := f.Index.PutRecord(rec); err != nil {
			if !errors.Is(err, content.ErrRollback) {
				f.Log.Warn("keeping a gossiped record", "name", rec.Key+"/"+rec.Name, "err", err)
			}
			continue
		}
		f.Log.Info("a followed publisher signed a record", "name", rec.Key+"/"+rec.Name, "seq", rec.Seq, "root", rec.Root.Cid)
		f.ensure(rec)
	}
}

// ensure has the root of a followed name's record fetched and pinned, in
// the background; the root an older record of that name had pinned is
// unpinned once the new one is in (gc may then collect it).
func (f *Follower) ensure(s *content.Signed) {
	root := s.Root.Cid
	if s.Live(time.Now()) != nil {
		return
	}
	f.mu.Lock()
	if f.ensuring[root] {
		f.mu.Unlock()
		return
	}
	f.ensuring[root] = true
	f.mu.Unlock()
	f.spawn(func() {
		defer func() {
			f.mu.Lock()
			delete(f.ensuring, root)
			f.mu.Unlock()
		}()
		reason := "follow " + s.Key + "/" + s.Name
		err := f.Pin(f.ctx, root, reason)
		f.mu.Lock()
		if err != nil {
			f.failed[root] = content.OneLine(err.Error())
		} else {
			delete(f.failed, root)
		}
		f.mu.Unlock()
		if err != nil {
			if f.ctx.Err() == nil {
				f.Log.Warn("fetching a followed model", "name", s.Key+"/"+s.Name, "root", root, "err", err)
			}
			return
		}
		f.unpinOlder(s, reason)
	})
}

// unpinOlder unpins the roots pinned for reason other than the one s now
// names.
func (f *Follower) unpinOlder(s *content.Signed, reason string) {
	pins, err := f.Index.Pins()
	if err != nil {
		return
	}
	for _, p := range pins {
		if p.Reason == reason && p.Root != s.Root.Cid {
			if kept, err := f.Index.Record(s.Key, s.Name); err == nil && kept.Root.Cid == s.Root.Cid {
				_, _ = f.Index.Unpin(p.Root)
			}
		}
	}
}

// records are the kept records of a publisher.
func (f *Follower) records(key string) []*content.Signed {
	var out []*content.Signed
	for _, s := range f.Index.Records() {
		if s.Key == key {
			out = append(out, s)
		}
	}
	return out
}

// loop asks the DHT for followed names every Check, and republishes kept
// records every Republish.
func (f *Follower) loop(ctx context.Context) {
	check := time.NewTicker(f.Check)
	defer check.Stop()
	push := time.NewTicker(f.Republish)
	defer push.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			f.checkDHT(ctx)
		case <-push.C:
			f.republish("")
		}
	}
}

// checkDHT looks up every name of every followed publisher that this node
// knows of, and fetches what is newer.
func (f *Follower) checkDHT(ctx context.Context) {
	follows, _ := f.Index.Follows()
	for _, fl := range follows {
		for _, s := range f.records(fl.Key) {
			if ctx.Err() != nil {
				return
			}
			if rec, err := f.Resolve(ctx, s.Key, s.Name); err == nil {
				f.ensure(rec)
			}
		}
	}
}

// republish gossips the kept records of the publisher key ("" for every
// joined topic) again, at most once every few seconds a topic.
func (f *Follower) republish(key string) {
	f.mu.Lock()
	var due []string
	for k, j := range f.topics {
		if (key == "" || k == key) && time.Since(j.lastPush) > republishMin {
			j.lastPush = time.Now()
			due = append(due, k)
		}
	}
	f.mu.Unlock()
	for _, k := range due {
		for _, s := range f.records(k) {
			if s.Live(time.Now()) == nil {
				f.Announce(s)
			}
		}
	}
}

// republishMin spaces republishes of one topic triggered by peers joining.
const republishMin = 5 * time.Second

// watchJoins republishes a topic's records when a peer joins it, so that
// a mirror back from offline catches up in seconds, not at the next
// round.
func (f *Follower) watchJoins(key string, t *pubsub.Topic) {
	h, err := t.EventHandler()
	if err != nil {
		return
	}
	f.spawn(func() {
		defer h.Cancel()
		for {
			ev, err := h.NextPeerEvent(f.ctx)
			if err != nil {
				return
			}
			if ev.Type == pubsub.PeerJoin {
				time.AfterFunc(time.Second, func() { f.republish(key) }) // let its mesh settle
			}
		}
	})
}
