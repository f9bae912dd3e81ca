package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/mirror"
)

// homeNode runs a daemon-like node on a home of its own (so it has a
// store), bootstrapped from boot. stop closes it; the test's cleanup
// does too.
func homeNode(t *testing.T, hm home.Home, cfg home.Config) (n *Node, stop func()) {
	t.Helper()
	if hm.Dir == "" {
		hm = home.Home{Dir: t.TempDir()}
	}
	if _, err := hm.Init(); err != nil {
		t.Fatal(err)
	}
	n, closeNode, err := open(hm, cfg, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	stop = sync1(func() { closeNode() })
	t.Cleanup(stop)
	n.startDaemonLoops()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return n, stop
}

// sync1 makes f safe to call more than once.
func sync1(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

// A mirror that follows a publisher learns of its new record over
// gossip, fetches the model into its store, pins and announces it, and
// after a restart still serves it to a newcomer, with the publisher gone.
// A second record for the same name moves the pin to the new model.
func TestMirrorFollowsPublisher(t *testing.T) {
	ctx := ctxT(t)
	pub, stopPub := homeNode(t, home.Home{}, testConfig())
	mhome := home.Home{Dir: t.TempDir()}
	mcfg := testConfig(pub.Addrs()[0].String())
	mir, stopMir := homeNode(t, mhome, mcfg)
	pubKey := pub.Host.ID().String()
	if _, err := mir.Service().Follow(ctx, api.FollowRequest{Publisher: pubKey}); err != nil {
		t.Fatal(err)
	}
	model, added := addModel(t, pub, 71)
	root := added.Root
	if _, err := pub.Service().Publish(ctx, api.PublishRequest{Name: "llm", Root: root}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 30*time.Second, "the mirror to hold the published model", func() bool {
		ri, err := mir.Index.Root(root)
		return err == nil && ri.Pin != nil
	})
	t.Logf("mirror held the model %v after the publish", time.Since(start).Round(time.Millisecond))
	ri, _ := mir.Index.Root(root)
	if ri.Source != content.SourceStored || ri.Pin.Reason != "follow "+pubKey+"/llm" {
		t.Fatalf("mirror holds %+v, pin %+v", ri, ri.Pin)
	}
	sameTree(t, model, mir.keeper.StoreDir(root))
	waitFor(t, 20*time.Second, "the mirror to announce it", func() bool {
		st := mir.ann.snapshot()[root.String()]
		return !st.Last.IsZero()
	})

	// A new version of the name: fetched, pinned; the old one unpinned.
	_, added2 := addModel(t, pub, 72)
	if _, err := pub.Service().Publish(ctx, api.PublishRequest{Name: "llm", Root: added2.Root}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the mirror to follow the new version", func() bool {
		ri, err := mir.Index.Root(added2.Root)
		old, _ := mir.Index.Root(root)
		return err == nil && ri.Pin != nil && old.Pin == nil
	})

	// The mirror restarts; the publisher is gone: a newcomer that knows
	// only the mirror resolves the name and fetches from it alone.
	stopPub()
	stopMir()
	mir, _ = homeNode(t, mhome, testConfig()) // its bootstrap peer is gone
	fresh := newTestNode(t, mir.Addrs()[0].String())
	rec, err := fresh.Resolve(ctx, pubKey, "llm")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Root.Cid != added2.Root {
		t.Fatalf("resolved %s, want %s", rec.Root.Cid, added2.Root)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fresh.Get(ctx, root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// A record with a bad signature gossiped on a followed publisher's topic
// is dropped and counted by the mirror, and not passed on: a node that
// hears the topic only through the mirror never sees it.
func TestGossipDropsForgedRecords(t *testing.T) {
	ctx := ctxT(t)
	pub, _ := homeNode(t, home.Home{}, testConfig())
	mir, _ := homeNode(t, home.Home{}, testConfig(pub.Addrs()[0].String()))
	far, _ := homeNode(t, home.Home{}, testConfig(mir.Addrs()[0].String()))
	pubKey := pub.Host.ID().String()
	for _, n := range []*Node{mir, far} {
		if _, err := n.Service().Follow(ctx, api.FollowRequest{Publisher: pubKey}); err != nil {
			t.Fatal(err)
		}
	}
	// A valid record, then the same with its signature broken.
	_, added := addModel(t, pub, 73)
	key, _ := keyOf(t, pub)
	s, err := content.Sign(key, "llm", added.Root, 9, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	forged := slices.Clone(s.Envelope)
	forged[len(forged)-3] ^= 0xff

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, peer.AddrInfo{ID: mir.Host.ID(), Addrs: mir.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(mirror.Topic(pubKey))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the hostile peer to see the mirror on the topic", func() bool {
		return slices.Contains(topic.ListPeers(), mir.Host.ID())
	})
	for range 5 {
		if err := topic.Publish(ctx, forged); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the mirror to count the forged records", func() bool {
		return mir.follower.Rejected() >= 1
	})
	time.Sleep(2 * time.Second) // what the mirror would relay arrives by now
	if far.follower.Rejected() != 0 {
		t.Fatalf("the far node saw %d forged records: the mirror relayed them", far.follower.Rejected())
	}
	for _, n := range []*Node{mir, far} {
		if _, err := n.Index.Record(pubKey, "llm"); !errors.Is(err, content.ErrNotFound) {
			t.Fatalf("a forged record was kept: %v", err)
		}
	}
}

// gc keeps pinned models and what is being fetched, deletes only the
// node's own store copies of the rest, and only forgets users' folders.
// A dry run touches nothing.
func TestGCKeepsPinsAndUserFiles(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	n, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	svc := n.Service()
	_, mine := addModel(t, n, 81)   // added: pinned by add
	_, b := addModel(t, seeder, 82) // fetched into a user's folder
	_, c := addModel(t, seeder, 83) // pinned into the store
	_, d := addModel(t, seeder, 84) // pinned into the store, then unpinned
	userDir := filepath.Join(t.TempDir(), "b")
	if _, err := svc.Get(ctx, api.GetRequest{Root: b.Root, Dir: userDir}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []cid.Cid{c.Root, d.Root} {
		res, err := svc.Pin(ctx, api.PinRequest{Root: r}, nil)
		if err != nil || res.Fetched == nil {
			t.Fatalf("pin %s: %+v %v", r, res, err)
		}
	}
	if res, err := svc.Unpin(ctx, api.PinRequest{Root: d.Root}); err != nil || !res.Unpinned {
		t.Fatalf("unpin: %+v %v", res, err)
	}
	dDir := n.keeper.StoreDir(d.Root)
	dry, err := svc.GC(ctx, api.GCRequest{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Items) != 2 || dry.Freed != d.Size {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := os.Stat(dDir); err != nil {
		t.Fatalf("a dry run deleted: %v", err)
	}
	rep, err := svc.GC(ctx, api.GCRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 2 || rep.Freed != d.Size || rep.Kept != 2 || rep.Used != c.Size {
		t.Fatalf("gc: %+v", rep)
	}
	if _, err := os.Stat(dDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unpinned store copy is still there: %v", err)
	}
	if err := filepath.WalkDir(userDir, func(string, os.DirEntry, error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rep2, err := n.Service().Verify(ctx, c.Root, nil)
	if err != nil || !rep2.OK {
		t.Fatalf("the pinned store copy: %+v %v", rep2, err)
	}
	for _, r := range []cid.Cid{mine.Root, c.Root} {
		if _, err := n.Index.Root(r); err != nil {
			t.Fatalf("kept root %s: %v", r, err)
		}
	}
	for _, r := range []cid.Cid{b.Root, d.Root} {
		if _, err := n.Index.Root(r); !errors.Is(err, content.ErrNotFound) {
			t.Fatalf("collected root %s still held: %v", r, err)
		}
	}
	// The user's fetched folder is forgotten, never deleted.
	if ents, err := os.ReadDir(userDir); err != nil || len(ents) == 0 {
		t.Fatalf("gc touched the user's folder: %v %v", ents, err)
	}
}

// A pin that would take the store past storage_max is refused before any
// chunk moves, with the numbers; nothing is left pinned or written.
func TestStorageBudgetRefused(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	cfg := testConfig(seeder.Addrs()[0].String())
	cfg.StorageMax = "1MiB"
	n, _ := homeNode(t, home.Home{}, cfg)
	_, m := addModel(t, seeder, 91)
	_, err := n.Service().Pin(ctx, api.PinRequest{Root: m.Root}, nil)
	if !errors.Is(err, mirror.ErrOverBudget) || !strings.Contains(err.Error(), "1.0 MiB budget") {
		t.Fatalf("pin past the budget: %v", err)
	}
	if pins, _ := n.Index.Pins(); len(pins) != 0 {
		t.Fatalf("left pinned: %+v", pins)
	}
	if ents, _ := os.ReadDir(n.keeper.StoreDir(m.Root)); len(ents) > 1 { // at most the empty fetch state
		t.Fatalf("wrote into the store: %v", ents)
	}
	if n.fetched.Load() > 1<<20 {
		t.Fatalf("%d bytes fetched before the refusal", n.fetched.Load())
	}
}

// gc running again and again while a fetch runs does not break it.
func TestGCDuringFetch(t *testing.T) {
	ctx := ctxT(t)
	scfg := testConfig()
	scfg.MaxUpload = "4MB/s"
	seeder, _ := homeNode(t, home.Home{}, scfg)
	n, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	dir := filepath.Join(t.TempDir(), "m")
	if _, err := testmodel.Folder(dir, 8, 93); err != nil {
		t.Fatal(err)
	}
	m, err := seeder.Add(ctx, dir, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	out := filepath.Join(t.TempDir(), "out")
	go func() {
		_, err := n.Service().Get(ctx, api.GetRequest{Root: m.Root, Dir: out}, nil)
		done <- err
	}()
	gcs := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if gcs < 2 {
				t.Fatalf("only %d gc runs overlapped the fetch", gcs)
			}
			sameTree(t, dir, out)
			return
		case <-time.After(100 * time.Millisecond):
			if _, err := n.Service().GC(ctx, api.GCRequest{}); err != nil {
				t.Fatal(err)
			}
			gcs++
		}
	}
}

// A daemon's DHTs keep provider records on disk: after a restart, a
// mirror still knows who announced a root to it while it ran, though
// that peer is gone.
func TestDHTStoreSurvivesRestart(t *testing.T) {
	ctx := ctxT(t)
	mhome := home.Home{Dir: t.TempDir()}
	mir, stopMir := homeNode(t, mhome, testConfig())
	seeder := newTestNode(t, mir.Addrs()[0].String())
	_, added := addModel(t, seeder, 95)
	has := func(n *Node) bool {
		provs, err := n.DHT.LAN.ProviderStore().GetProviders(ctx, added.Root.Hash())
		return err == nil && slices.ContainsFunc(provs, func(p peer.AddrInfo) bool { return p.ID == seeder.Host.ID() })
	}
	waitFor(t, 20*time.Second, "the seeder's provider record at the mirror", func() bool { return has(mir) })
	seeder.Close()
	stopMir()
	mir, _ = homeNode(t, mhome, testConfig())
	if !has(mir) {
		t.Fatal("the restarted mirror forgot the provider record")
	}
}

// Threat 22: a byte flipped in a seeded file (size and mtime kept, as
// bit rot leaves them) is never served: the seeder checks each chunk as
// it reads it, counts the rot, and a fetcher receives no bad chunk.
func TestBitRotNeverServed(t *testing.T) {
	seeder := newTestNode(t)
	model, added := addModel(t, seeder, 97)
	f := filepath.Join(model, added.M.Files[0].Path)
	flipByte(t, f)
	cfg := testConfig(seeder.Addrs()[0].String())
	cfg.FindTimeout = home.Duration(3 * time.Second)
	fetcher := newTestNodeCfg(t, cfg)
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	_, err := fetcher.Get(ctx, added.Root, filepath.Join(t.TempDir(), "out"), GetOptions{})
	if err == nil {
		t.Fatal("fetched a model whose only copy rotted")
	}
	t.Logf("fetch: %v (file %s)", err, f)
	if fetcher.badChunks.Load() != 0 {
		t.Fatalf("the fetcher received %d bad chunks: the seeder served rot", fetcher.badChunks.Load())
	}
	if seeder.rotten.Load() == 0 {
		t.Fatal("the seeder did not notice the rot")
	}
	rep, err := Verify(ctx, home.Home{}, seeder.Index, added.Root, nil)
	if err != nil || rep.OK {
		t.Fatalf("verify on the seeder: %+v %v", rep, err)
	}
}

// A mirror whose budget holds one version of a followed name makes room
// for the next: the older version is unpinned and collected, the new one
// fetched; nothing is left failing, nor announced that is gone.
func TestFollowerMakesRoomWithinBudget(t *testing.T) {
	ctx := ctxT(t)
	pub, _ := homeNode(t, home.Home{}, testConfig())
	cfg := testConfig(pub.Addrs()[0].String())
	cfg.StorageMax = "5MiB"
	mir, _ := homeNode(t, home.Home{}, cfg)
	pubKey := pub.Host.ID().String()
	if _, err := mir.Service().Follow(ctx, api.FollowRequest{Publisher: pubKey}); err != nil {
		t.Fatal(err)
	}
	var roots []cid.Cid
	for i, seed := range []uint64{101, 102} {
		_, added := addModel(t, pub, seed)
		roots = append(roots, added.Root)
		if _, err := pub.Service().Publish(ctx, api.PublishRequest{Name: "llm", Root: added.Root}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the mirror to hold version "+fmt.Sprint(i+1), func() bool {
			ri, err := mir.Index.Root(added.Root)
			return err == nil && ri.Pin != nil
		})
	}
	if _, err := mir.Index.Root(roots[0]); !errors.Is(err, content.ErrNotFound) {
		t.Fatalf("the older version is still held: %v", err)
	}
	if _, ok := mir.ann.snapshot()[roots[0].String()]; ok {
		t.Fatal("the collected version is still announced")
	}
	if st := mir.Status(); len(st.FollowErrors) != 0 || st.StorageUsed > st.StorageBudget {
		t.Fatalf("status: errors %v, store %d of %d", st.FollowErrors, st.StorageUsed, st.StorageBudget)
	}
}

// flipByte flips a byte in the middle of a file, keeping its size and
// modification time, as bit rot would.
func flipByte(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, path, st.Size()/2)
}

// Threat 22, the scrub: rot in a folder a user added is reported, the
// root is no longer announced nor offered as complete, and once the file
// is mended a scrub puts it back. Rot in a copy Shoal fetched is healed
// from peers; with no peer to heal from, the copy is left exactly as it
// was, however often scrub runs (found by the second newcomer).
func TestScrubHealsAndStopsAnnouncing(t *testing.T) {
	ctx := ctxT(t)
	seeder := newTestNode(t)
	fetcher := newTestNode(t, seeder.Addrs()[0].String())
	model, added := addModel(t, seeder, 111)
	root := added.Root
	out := filepath.Join(t.TempDir(), "out")
	if _, err := fetcher.Get(ctx, root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	big := added.M.Files[0].Path
	for _, f := range added.M.Files {
		if f.Size > added.M.Files[0].Size {
			big = f.Path
		}
	}

	// The seeder's own folder rots: reported, withdrawn, then mended.
	orig, err := os.ReadFile(filepath.Join(model, big))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(model, big))
	flipByte(t, filepath.Join(model, big))
	rep, err := seeder.Scrub(ctx, api.ScrubRequest{Roots: []cid.Cid{root}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Roots[0].Places[0]; rep.OK || p.Healed || !p.Damaged || rep.Roots[0].Servable {
		t.Fatalf("scrub of a rotted added folder: %+v", rep)
	}
	if keys, _ := seeder.Keys(root); len(keys) != 0 {
		t.Fatalf("a root with no intact copy still announces %v", keys)
	}
	if _, ok := seeder.ann.snapshot()[root.String()]; ok {
		t.Fatal("a root with no intact copy is still in the announcer")
	}
	if hm, err := seeder.fetcher.Have(root); err == nil && hm.Complete {
		t.Fatal("a root with no intact copy is still offered as complete")
	}
	if err := os.WriteFile(filepath.Join(model, big), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(model, big), st.ModTime(), st.ModTime())
	rep, err = seeder.Scrub(ctx, api.ScrubRequest{Roots: []cid.Cid{root}}, nil)
	if err != nil || !rep.OK || !rep.Roots[0].Servable {
		t.Fatalf("scrub after mending: %+v %v", rep, err)
	}
	if keys, _ := seeder.Keys(root); len(keys) == 0 {
		t.Fatal("the mended root is not announced again")
	}

	// The fetched copy rots while no peer has the model: nothing moves.
	flipByte(t, filepath.Join(out, big))
	seeder.Close()
	snapshot := func() map[string]string {
		m := map[string]string{}
		filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				fi, _ := d.Info()
				m[p] = fmt.Sprintf("%x %d", b, fi.ModTime().UnixNano())
			}
			return nil
		})
		return m
	}
	before := snapshot()
	for i := range 2 {
		rep, err := fetcher.Scrub(ctx, api.ScrubRequest{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := rep.Roots[0].Places[0]; rep.OK || p.Healed || !p.Damaged || p.Error == "" {
			t.Fatalf("scrub %d with no peer: %+v", i, rep)
		}
		if after := snapshot(); !maps.Equal(before, after) {
			t.Fatalf("scrub %d with no peer to heal from changed the folder", i)
		}
	}
	// A peer with the model comes: the bad file is healed, the rest kept.
	seeder2 := newTestNode(t)
	if _, err := seeder2.Add(ctx, model, content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fetcher.Host.Connect(ctx, peer.AddrInfo{ID: seeder2.Host.ID(), Addrs: seeder2.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	rep, err = fetcher.Scrub(ctx, api.ScrubRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Roots[0].Places[0]; !rep.OK || !p.Healed || len(p.Bad) != 1 || !rep.Roots[0].Servable {
		t.Fatalf("scrub with a peer back: %+v", rep)
	}
	sameTree(t, model, out)
	after := snapshot()
	for p, v := range before {
		if !strings.HasSuffix(p, big) && after[p] != v {
			t.Fatalf("healing touched a good file: %s", p)
		}
	}
	if v, err := fetcher.Service().Verify(ctx, root, nil); err != nil || !v.OK {
		t.Fatalf("verify after healing: %+v %v", v, err)
	}
}

// gc never deletes through a symbolic link out of the store (a folder in
// the store replaced by a link to elsewhere), and it deletes what a
// cancelled fetch left in the store, which the budget counts until then
// (both found by the attacker subagent).
func TestGCStaysInTheStore(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	n, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	_, m := addModel(t, seeder, 121)
	if _, err := n.Service().Pin(ctx, api.PinRequest{Root: m.Root}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Service().Unpin(ctx, api.PinRequest{Root: m.Root}); err != nil {
		t.Fatal(err)
	}
	// Someone moves the store copy away and links a folder of theirs in.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.CopyFS(victim, os.DirFS(n.keeper.StoreDir(m.Root))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(n.keeper.StoreDir(m.Root)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, n.keeper.StoreDir(m.Root)); err != nil {
		t.Fatal(err)
	}
	// A fetch cancelled half way leaves a partial folder in the store.
	partial := filepath.Join(n.Home.StorePath(), "bafyreipartial")
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "w.bin.shoal-part"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if used := n.keeper.Used(); used < 1<<20 {
		t.Fatalf("the store's use %d does not count the partial fetch", used)
	}
	if _, err := n.Service().GC(ctx, api.GCRequest{}); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(victim)
	if err != nil || len(ents) == 0 {
		t.Fatalf("gc deleted through the link: %v %v", ents, err)
	}
	if _, err := os.Lstat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial fetch is still in the store: %v", err)
	}
	if _, err := os.Lstat(n.keeper.StoreDir(m.Root)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link is still in the store: %v", err)
	}
	if used := n.keeper.Used(); used != 0 {
		t.Fatalf("store use after gc: %d", used)
	}
}

// Announcing grows with roots and files, never with chunks: one round
// for a model of many chunks provides its root and its files' keys only.
func TestAnnouncesRootsAndFilesNotChunks(t *testing.T) {
	nodes := cluster(t, 2)
	n := nodes[1]
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, 24, 131); err != nil {
		t.Fatal(err)
	}
	added, err := n.Add(ctxT(t), model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the model's announce", func() bool {
		return !n.ann.snapshot()[added.Root.String()].Last.IsZero()
	})
	keys, _ := n.Keys(added.Root)
	chunks := len(added.M.Chunks)
	// The root goes out once at add, then with the file keys in the round.
	if got := n.provides.Load(); got > int64(len(keys))+1 || len(keys) > len(added.M.Files)+1 || chunks < 3*len(keys) {
		t.Fatalf("%d provides for %d keys (%d files, %d chunks)", got, len(keys), len(added.M.Files), chunks)
	}
}

// A scrub heals only inside the very folder Shoal fetched into (found by
// the second attacker): a folder moved away and replaced by the user's
// own files, or a subfolder replaced by a link out, is reported and left
// alone, and the files elsewhere are untouched. A file touched with its
// bytes intact is recorded again, not fetched.
func TestScrubNeverWritesOutside(t *testing.T) {
	ctx := ctxT(t)
	seeder := newTestNode(t)
	fetcher := newTestNode(t, seeder.Addrs()[0].String())
	model := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(filepath.Join(model, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(model, "weights.bin"), testmodel.Bytes(2<<20, 5), 0o644)
	os.WriteFile(filepath.Join(model, "sub", "config.json"), []byte(`{"a":1}`), 0o644)
	added, err := seeder.Add(ctx, model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := fetcher.Get(ctx, added.Root, out, GetOptions{}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	mine := []byte("MY FINETUNE, NOT SHOAL'S")
	scrubBad := func(want string) {
		t.Helper()
		rep, err := fetcher.Scrub(ctx, api.ScrubRequest{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Roots {
			for _, p := range r.Places {
				if p.Healed {
					t.Fatalf("%s: healed %s", want, p.Dir)
				}
			}
		}
	}

	// A subfolder replaced by a link to someone's folder.
	out := get()
	victim := filepath.Join(t.TempDir(), "victim")
	os.MkdirAll(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "config.json"), mine, 0o644)
	os.Rename(filepath.Join(out, "sub"), filepath.Join(out, "sub.orig"))
	if err := os.Symlink(victim, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	scrubBad("a link out")
	if b, _ := os.ReadFile(filepath.Join(victim, "config.json")); string(b) != string(mine) {
		t.Fatalf("the file behind the link was changed: %q", b)
	}
	os.Remove(filepath.Join(out, "sub"))
	os.Rename(filepath.Join(out, "sub.orig"), filepath.Join(out, "sub"))

	// The folder moved away, and the user's own files put in its place.
	os.Rename(out, out+".moved")
	os.MkdirAll(filepath.Join(out, "sub"), 0o755)
	os.WriteFile(filepath.Join(out, "weights.bin"), mine, 0o644)
	os.WriteFile(filepath.Join(out, "sub", "config.json"), mine, 0o644)
	scrubBad("a replaced folder")
	for _, f := range []string{"weights.bin", "sub/config.json"} {
		if b, _ := os.ReadFile(filepath.Join(out, f)); string(b) != string(mine) {
			t.Fatalf("the user's %s was overwritten", f)
		}
	}

	// A file touched, bytes intact: recorded again, served, not fetched.
	out2 := get()
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(out2, "weights.bin"), later, later)
	before := seeder.chunksServed.Load()
	rep, err := fetcher.Scrub(ctx, api.ScrubRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Roots {
		for _, p := range r.Places {
			if p.Dir == out2 && (len(p.Bad) != 0 || p.Healed) {
				t.Fatalf("a touched file with intact bytes: %+v", p)
			}
		}
	}
	if seeder.chunksServed.Load() != before {
		t.Fatal("a touched file was fetched again")
	}
	if files, _ := fetcher.Index.PlaceFiles(added.Root, out2); files[1].MtimeNs != later.UnixNano() && files[0].MtimeNs != later.UnixNano() {
		t.Fatal("the new time was not recorded")
	}
}

// A pinned model whose only copy is deleted is fetched again into the
// store: a pin is a promise to keep it.
func TestPinnedModelFetchedAgain(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	n, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	model, m := addModel(t, seeder, 141)
	if _, err := n.Service().Pin(ctx, api.PinRequest{Root: m.Root}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(n.keeper.StoreDir(m.Root)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Service().GC(ctx, api.GCRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Index.Root(m.Root); !errors.Is(err, content.ErrNotFound) {
		t.Fatalf("the gone copy is still held: %v", err)
	}
	n.refetchPins(ctx)
	if _, err := n.Index.Root(m.Root); err != nil {
		t.Fatalf("the pinned model was not fetched again: %v", err)
	}
	sameTree(t, model, n.keeper.StoreDir(m.Root))
}
