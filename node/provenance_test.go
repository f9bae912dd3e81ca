package node

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/testmodel"
)

func keyOf(t *testing.T, n *Node) (crypto.PrivKey, string) {
	t.Helper()
	k := n.Host.Peerstore().PrivKey(n.Host.ID())
	return k, n.Host.ID().String()
}

func addModel(t *testing.T, n *Node, seed uint64) (string, *Added) {
	t.Helper()
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, 2, seed); err != nil {
		t.Fatal(err)
	}
	im, err := n.Add(ctxT(t), model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return model, im
}

// putRaw sends a raw PUT_VALUE for key to every node but from, skipping
// from's own validation: the nodes' validators must refuse it.
func putRaw(t *testing.T, from *Node, to []*Node, key string, value []byte) {
	t.Helper()
	for _, n := range to {
		if n == from {
			continue
		}
		msg := pb.NewMessage(pb.Message_PUT_VALUE, []byte(key), 0)
		msg.Record = &recpb.Record{Key: []byte(key), Value: value}
		sendKad(t, from, n, msg)
	}
}

// Names resolve across 8 nodes; two publishers may sign one CID; a forged
// record (right name, wrong key) is dropped by every DHT node and gets no
// chunk fetched; get by name checks the signer.
func TestPublishResolveAcrossNetwork(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 8)
	alice, carol, mallory, bob := nodes[2], nodes[4], nodes[5], nodes[7]
	aliceKey, aliceID := keyOf(t, alice)
	carolKey, carolID := keyOf(t, carol)
	model, im := addModel(t, alice, 21)

	if _, err := alice.Publish(ctx, aliceKey, "llama", im.M.Root, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Publish(ctx, carolKey, "mirror-of-llama", im.M.Root, 0); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Resolve(ctx, aliceID, "llama")
	if err != nil {
		t.Fatal(err)
	}
	if got.Root.Cid != im.M.Root || got.Seq != 1 || got.Key != aliceID {
		t.Fatalf("resolved %+v", got)
	}
	if got, err := bob.Resolve(ctx, carolID, "mirror-of-llama"); err != nil || got.Root.Cid != im.M.Root {
		t.Fatalf("second publisher: %+v %v", got, err)
	}

	// Mallory forges alice's name for another model, signed with her own
	// key, and pushes it straight to every node.
	_, evil := addModel(t, mallory, 22)
	malKey, _ := keyOf(t, mallory)
	forged := content.Record{Publisher: []byte(alice.Host.ID()), Name: "llama", Root: content.Link{Cid: evil.M.Root}, Seq: 99, Time: time.Now().Unix()}
	env, err := sealRecord(&forged, malKey)
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, mallory, nodes, content.RecordKey(aliceID, "llama"), env)
	got, err = nodes[6].Resolve(ctx, aliceID, "llama")
	if err != nil || got.Root.Cid != im.M.Root || got.Seq != 1 {
		t.Fatalf("after the forgery: %+v %v", got, err)
	}
	// Asking for mallory's model as alice's: refused before any chunk.
	out := filepath.Join(t.TempDir(), "out")
	if _, err := bob.Get(ctx, evil.M.Root, out, GetOptions{Publisher: aliceID}); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("unsigned root: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("something was written for a root the publisher did not sign")
	}

	// Get by name: the resolved record travels with the fetch, and the
	// result names both signers (carol's record came with the resolve of
	// her name above).
	res, err := bob.Get(ctx, got.Root.Cid, out, GetOptions{Publisher: aliceID, Records: [][]byte{got.Envelope}})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	keys := map[string]bool{}
	for _, s := range res.Signers {
		keys[s.Key] = true
	}
	if !keys[aliceID] || !keys[carolID] || len(res.Signers) != 2 {
		t.Fatalf("signers %+v", res.Signers)
	}
}

// sealRecord signs any record with k, checking nothing (to forge one).
func sealRecord(r *content.Record, k crypto.PrivKey) ([]byte, error) {
	env, err := record.Seal(r, k)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// Records travel with manifests: a fetcher that never resolved the name
// learns who signed the root from the seeder.
func TestRecordsTravelWithManifest(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 3)
	alice, bob := nodes[1], nodes[2]
	k, id := keyOf(t, alice)
	_, im := addModel(t, alice, 23)
	if _, err := alice.Publish(ctx, k, "m", im.M.Root, 0); err != nil {
		t.Fatal(err)
	}
	res, err := bob.Get(ctx, im.M.Root, filepath.Join(t.TempDir(), "out"), GetOptions{Publisher: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signers) != 1 || res.Signers[0].Key != id {
		t.Fatalf("signers %+v", res.Signers)
	}
}

// Threats 12 and 14: a node that has seen sequence 2 never goes back to 1,
// even when the DHT serves only 1, and not after a restart; one key
// signing twice is one signer.
func TestRollbackRefused(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 3)
	alice, bob := nodes[1], nodes[2]
	k, id := keyOf(t, alice)
	_, im1 := addModel(t, alice, 24)
	_, im2 := addModel(t, alice, 25)
	s1, err := alice.Publish(ctx, k, "m", im1.M.Root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Publish(ctx, k, "m", im2.M.Root, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := bob.Resolve(ctx, id, "m"); err != nil || got.Seq != 2 {
		t.Fatalf("resolve: %+v %v", got, err)
	}
	// Replaying the old record to bob is refused.
	if err := bob.Index.PutRecord(s1.Record); !errors.Is(err, content.ErrRollback) {
		t.Fatalf("replay: err = %v", err)
	}
	// A DHT that serves only the old record: a fresh network holding s1.
	other := cluster(t, 2)
	other[0].DHT.PutValue(ctx, content.RecordKey(id, "m"), s1.Record.Envelope)
	cfg := testConfig(other[0].Addrs()[0].String())
	bob2 := newTestNodeCfg(t, cfg)
	if err := bob2.Index.PutRecord(mustOpen(t, bob, id)); err != nil {
		t.Fatal(err)
	}
	got, err := bob2.Resolve(ctx, id, "m")
	if err != nil || got.Seq != 2 {
		t.Fatalf("rolled back to %+v (%v)", got, err)
	}
	// Same key, two records naming one root: one signer.
	if _, err := alice.Publish(ctx, k, "m-alias", im2.M.Root, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(signers(home.Home{}, alice.Index, im2.M.Root)); n != 1 {
		t.Fatalf("%d signers for one key", n)
	}
}

func mustOpen(t *testing.T, n *Node, keyID string) *content.Signed {
	t.Helper()
	s, err := n.Index.Record(keyID, "m")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Threat 13: an expired record fails closed for the name; fetching by CID
// still works.
func TestExpiredRecordFailsClosed(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 3)
	alice, bob := nodes[1], nodes[2]
	k, id := keyOf(t, alice)
	model, im := addModel(t, alice, 26)
	if _, err := alice.Publish(ctx, k, "m", im.M.Root, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := bob.Resolve(ctx, id, "m"); !errors.Is(err, content.ErrExpired) && !errors.Is(err, ErrNoRecord) {
		t.Fatalf("expired name: err = %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := bob.Get(ctx, im.M.Root, out, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
}

// A record published with no DHT peers is kept and put on the DHT by the
// next announce round, where it outlives its publisher going away.
func TestRecordRepublished(t *testing.T) {
	ctx := ctxT(t)
	alice := newTestNode(t)
	k, id := keyOf(t, alice)
	_, im := addModel(t, alice, 27)
	if p, err := alice.Publish(ctx, k, "m", im.M.Root, 0); err != nil || p.Record == nil || p.NotOnDHT == nil {
		t.Fatalf("publish with no peers: %+v, %v (want kept, not on the DHT)", p, err)
	}
	carol := newTestNode(t, alice.Addrs()[0].String())
	newTestNode(t, alice.Addrs()[0].String())
	deadline := time.Now().Add(10 * time.Second)
	for alice.DHT.LAN.RoutingTable().Size() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := alice.republish(ctx); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	dave := newTestNode(t, carol.Addrs()[0].String())
	if got, err := dave.Resolve(ctx, id, "m"); err != nil || got.Root.Cid != im.M.Root {
		t.Fatalf("after republish: %+v %v", got, err)
	}
}
