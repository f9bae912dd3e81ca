package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/hostile"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

func testConfig(boot ...string) home.Config {
	c := home.DefaultConfig()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.Bootstrap = boot
	c.DHTMode = "server"
	// Multicast (mDNS, UPnP) would leave the machine; the tests that
	// need mDNS turn it on inside a network namespace of their own.
	c.MDNS, c.PortMapping = false, false
	c.FindTimeout = home.Duration(10 * time.Second)
	c.RequestTimeout = home.Duration(10 * time.Second)
	return c
}

func newTestNode(t testing.TB, boot ...string) *Node {
	t.Helper()
	return newTestNodeCfg(t, testConfig(boot...))
}

func newTestNodeCfg(t testing.TB, cfg home.Config) *Node {
	t.Helper()
	idx, err := content.OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := crypto.GenerateEd25519Key(nil)
	n, err := New(cfg, key, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); idx.Close() })
	// Test nodes stand for daemons: they keep what they hold announced.
	n.startDaemonLoops()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// cluster starts size nodes; every node but the first knows only the first.
func cluster(t testing.TB, size int) []*Node {
	t.Helper()
	first := newTestNode(t)
	nodes := []*Node{first}
	boot := first.Addrs()[0].String()
	for range size - 1 {
		nodes = append(nodes, newTestNode(t, boot))
	}
	return nodes
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sameTree fails unless every file under want is in got with the same
// bytes, and got holds nothing else.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	count := 0
	err := filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		count++
		rel, _ := filepath.Rel(got, p)
		a, err1 := os.ReadFile(filepath.Join(want, rel))
		b, err2 := os.ReadFile(p)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs (%v %v)", rel, err1, err2)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantCount := 0
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			wantCount++
		}
		return nil
	})
	if count != wantCount {
		t.Errorf("%d files fetched, want %d", count, wantCount)
	}
}

// TestDHTNetworkFetch: in a network of 8 nodes, a node that knows only the
// bootstrap peer finds the seeder through the DHT and fetches the model
// byte-identical; then it serves what it fetched to a third node.
func TestDHTNetworkFetch(t *testing.T) {
	leakcheck.Check(t) // eight nodes, two fetches: nothing outlives Close
	ctx := ctxT(t)
	nodes := cluster(t, 8)
	seeder, fetcher, third := nodes[3], nodes[7], nodes[5]
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, 6, 1); err != nil {
		t.Fatal(err)
	}
	im, err := seeder.Add(ctx, model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fetcher.Host.Network().Connectedness(seeder.Host.ID()) == 1 {
		t.Log("fetcher already connected to seeder through DHT traffic")
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if res.Peers != 1 || res.Size != im.M.Size() {
		t.Fatalf("result %+v", res)
	}
	// The fetched folder is now served: stop the seeder and fetch from the
	// fetcher alone.
	if err := fetcher.Announce(ctx, im.M.Root); err != nil {
		t.Fatal(err)
	}
	seeder.Close()
	out2 := filepath.Join(t.TempDir(), "out2")
	if _, err := third.Get(ctx, im.M.Root, out2, GetOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out2)
	rep, err := Verify(ctx, home.Home{}, fetcher.Index, im.M.Root, nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify after fetch: %+v %v", rep, err)
	}
}

// corrupt flips a byte of p and restores its size and mtime, so the edit
// cannot be seen from metadata.
func corrupt(t *testing.T, p string, at int64) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, at)
	b[0] ^= 0xff
	f.WriteAt(b, at)
	f.Close()
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// A seeder whose file was corrupted behind its back (size and mtime kept)
// notices as it reads and does not send the bad chunk (threat 22; a peer
// that sends bad bytes on purpose is internal/hostile's): alone, the fetch
// fails naming the seeder and writes no final file; with an honest seeder
// beside it, the fetch completes with the right bytes.
func TestCorruptSeeder(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 4)
	bad, good, fetcher := nodes[1], nodes[2], nodes[3]
	model := filepath.Join(t.TempDir(), "model")
	if _, err := testmodel.Folder(model, 3, 2); err != nil {
		t.Fatal(err)
	}
	badCopy := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(badCopy, os.DirFS(model)); err != nil {
		t.Fatal(err)
	}
	im, err := bad.Add(ctx, badCopy, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, filepath.Join(badCopy, "model.safetensors"), 1<<20+100)

	out := filepath.Join(t.TempDir(), "out")
	_, err = fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if !errors.Is(err, fetch.ErrNoSource) || fetcher.badChunks.Load() != 0 {
		t.Fatalf("err = %v, %d bad chunks received; want fetch.ErrNoSource and none", err, fetcher.badChunks.Load())
	}
	// The corrupted file never reaches its final path; files that verified
	// whole are kept, byte-identical, and so is the verified part of the
	// rest, with the progress log, for a later run.
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if strings.HasPrefix(rel, fetch.StateDir) || strings.HasSuffix(rel, content.PartialExt) {
			return nil
		}
		want, _ := os.ReadFile(filepath.Join(model, rel))
		got, _ := os.ReadFile(p)
		if rel == "model.safetensors" || !bytes.Equal(want, got) {
			t.Errorf("left behind after a failed fetch: %s", rel)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(out, "model.safetensors"+content.PartialExt)); err != nil {
		t.Errorf("verified part not kept: %v", err)
	}

	// With an honest seeder beside the corrupt one, running the same fetch
	// again completes it, fetching only what was missing.
	if _, err := good.Add(ctx, model, content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := fetcher.Get(ctx, im.M.Root, out, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, model, out)
	if distinct := int64(im.M.Distinct()); res.Resumed == 0 || res.Chunks+res.Resumed != distinct {
		t.Errorf("resumed %d and moved %d of %d chunks", res.Resumed, res.Chunks, distinct)
	}
	t.Logf("re-fetched %d chunks", res.Refetch)
}

func TestGetRefusals(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 2)
	n := nodes[1]
	n.cfg.FindTimeout = home.Duration(2 * time.Second)
	nobody := content.SumCID(content.CodecDagCBOR, []byte("nobody provides this"))
	if _, err := n.Get(ctx, nobody, t.TempDir()+"/x", GetOptions{}); !errors.Is(err, fetch.ErrNoProviders) {
		t.Fatalf("unprovided CID: err = %v", err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644)
	if _, err := n.Get(ctx, nobody, full, GetOptions{}); !errors.Is(err, fetch.ErrNotEmpty) {
		t.Fatalf("non-empty folder: err = %v", err)
	}
	if _, err := n.Get(ctx, content.SumCID(content.CodecRaw, []byte("x")), t.TempDir()+"/y", GetOptions{}); err == nil {
		t.Fatal("raw chunk CID accepted as a root")
	}
}

// hostileSeeder serves the given blocks (whatever they say) and provides
// root on the DHT.
func hostileSeeder(t *testing.T, n *Node, blocks map[cid.Cid][]byte, root cid.Cid) {
	t.Helper()
	srv := &protocol.Server{Store: hostile.Blocks(blocks)}
	n.Host.SetStreamHandler(protocol.ID, srv.Handle)
	if err := n.provide(ctxT(t), root); err != nil {
		t.Fatal(err)
	}
}

func craft(t *testing.T, paths ...string) (cid.Cid, map[cid.Cid][]byte) {
	t.Helper()
	root, blocks, err := hostile.Manifest(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return root, blocks
}

// Threat 15: hostile manifest paths are refused before anything is written.
func TestHostileManifestPaths(t *testing.T) {
	ctx := ctxT(t)
	nodes := cluster(t, 3)
	evil, fetcher := nodes[1], nodes[2]
	cases := [][]string{
		{"../../.bashrc"}, {"/etc/passwd"}, {"a/../../b"}, {`a\b`}, {"a\x00b"}, {"\x1b[2J"},
		{"a//b"}, {"ok", "ok"}, {"Model.bin", "model.bin"}, {"a", "a/b"},
	}
	for _, paths := range cases {
		t.Run(fmt.Sprintf("%q", paths), func(t *testing.T) {
			root, blocks := craft(t, paths...)
			hostileSeeder(t, evil, blocks, root)
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			_, err := fetcher.Get(ctx, root, out, GetOptions{})
			if !errors.Is(err, content.ErrBadPath) {
				t.Fatalf("err = %v, want ErrBadPath", err)
			}
			if strings.ContainsRune(err.Error(), 0x1b) {
				t.Fatalf("error prints a raw escape: %q", err)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 0 {
				t.Fatalf("something was written: %v", ents)
			}
		})
	}
	// A symlink planted in the target folder pointing outside: nothing is
	// written through it.
	root, blocks := craft(t, "sub/x.bin")
	hostileSeeder(t, evil, blocks, root)
	outside := t.TempDir()
	out := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := fetcher.Get(ctx, root, out, GetOptions{Force: true}); err == nil {
		t.Fatal("wrote through a planted symlink")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("written outside the target: %v", ents)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// touch moves a file's mtime forward, as an editor saving it would.
func touch(t *testing.T, p string) {
	t.Helper()
	later := time.Now().Add(5 * time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
}
