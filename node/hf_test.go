package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/gateway"
	"github.com/shoal-p2p/shoal/hf"
	"github.com/shoal-p2p/shoal/home"
)

// get --hf-cache writes the Hugging Face cache layout: blobs named by
// sha256, a snapshot of relative links named by the root's commit,
// refs/main; the snapshot is then where the node holds the root. A second
// model sharing files reuses their blobs instead of fetching them.
func TestGetIntoHFCache(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	fetcher, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	model, added := addModel(t, seeder, 81)
	repo := filepath.Join(t.TempDir(), "hub", "models--alice--tiny")
	res, err := fetcher.Service().Get(ctx, api.GetRequest{Root: added.Root, HFRepo: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit := hf.Commit(added.Root)
	if res.HF == nil || res.HF.Commit != commit || res.HF.Reused != 0 {
		t.Fatalf("result %+v", res.HF)
	}
	if ref, _ := os.ReadFile(filepath.Join(repo, "refs", "main")); string(ref) != commit {
		t.Errorf("refs/main %q, want %q", ref, commit)
	}
	snap := filepath.Join(repo, "snapshots", commit)
	sameTree(t, model, snap)
	m, _, err := fetcher.Index.Manifest(added.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		link := filepath.Join(snap, filepath.FromSlash(f.Path))
		target, err := os.Readlink(link)
		want := strings.Repeat("../", 2+strings.Count(f.Path, "/")) + "blobs/" + hex.EncodeToString(f.SHA256)
		if err != nil || target != want {
			t.Errorf("%s -> %q (%v), want %q", f.Path, target, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(repo, ".shoal-incoming")); !os.IsNotExist(err) {
		t.Errorf("staging left behind: %v", err)
	}
	// The snapshot is a held place: served, and gets find it there.
	if ri, err := fetcher.Index.Root(added.Root); err != nil || len(ri.Places) == 0 || ri.Places[0].Dir != snap {
		t.Errorf("held %+v %v", ri, err)
	}

	// A model of the same files but one: the others are reused blobs.
	other := filepath.Join(t.TempDir(), "other")
	copyTree(t, model, other)
	if err := os.WriteFile(filepath.Join(other, "config.json"), []byte(`{"changed":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	im2, err := seeder.Add(ctx, other, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := fetcher.Service().Get(ctx, api.GetRequest{Root: im2.Root, HFRepo: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.HF.Reused != len(m.Files)-1 {
		t.Errorf("reused %d blobs, want %d", res2.HF.Reused, len(m.Files)-1)
	}
	sameTree(t, other, filepath.Join(repo, "snapshots", hf.Commit(im2.Root)))
	if ref, _ := os.ReadFile(filepath.Join(repo, "refs", "main")); string(ref) != hf.Commit(im2.Root) {
		t.Errorf("refs/main not moved to the newer fetch")
	}
	// Every blob there already: nothing moves, refs/main moves back.
	res3, err := fetcher.Service().Get(ctx, api.GetRequest{Root: added.Root, HFRepo: repo}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res3.HF.Reused != len(m.Files) || res3.Chunks != 0 {
		t.Errorf("again: reused %d of %d, %d chunks moved", res3.HF.Reused, len(m.Files), res3.Chunks)
	}
	if len(res3.Pickle) == 0 {
		t.Error("a pickle among reused blobs is not reported")
	}
	if ri, _ := fetcher.Index.Root(added.Root); ri.Name != "alice/tiny" {
		t.Errorf("recorded as %q, want the repo id", ri.Name)
	}

	// Another user of a shared cache plants the staging folder as a link
	// out: the fetch is refused, and nothing is written there.
	repo2 := filepath.Join(filepath.Dir(repo), "models--alice--planted")
	outside := t.TempDir()
	_ = os.MkdirAll(repo2, 0o755)
	if err := os.Symlink(outside, filepath.Join(repo2, ".shoal-incoming")); err != nil {
		t.Fatal(err)
	}
	if _, err := fetcher.Service().Get(ctx, api.GetRequest{Root: im2.Root, HFRepo: repo2}, nil); err == nil {
		t.Error("a fetch staged through a planted link")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote %d entries outside the cache", len(ents))
	}
	if ref, _ := os.ReadFile(filepath.Join(repo, "refs", "main")); string(ref) != commit {
		t.Errorf("refs/main not moved back")
	}
}

// add --hf-cache: a snapshot's links into the repo's blobs are followed,
// others out are not, a dangling link is skipped, and each file's sha256
// is its blob's name (the Hub's LFS oid).
func TestAddFromHFCache(t *testing.T) {
	ctx := ctxT(t)
	n := newTestNode(t)
	repo := filepath.Join(t.TempDir(), "models--org--m")
	blobs := filepath.Join(repo, "blobs")
	snap := filepath.Join(repo, "snapshots", strings.Repeat("ab", 20))
	for _, d := range []string{blobs, filepath.Join(snap, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(t.TempDir(), "secret")
	_ = os.WriteFile(secret, []byte("not yours"), 0o600)
	files := map[string]string{"config.json": `{"a":1}`, "sub/weights.bin": strings.Repeat("w", 5000)}
	for rel, body := range files {
		sum := sha256hex([]byte(body))
		if err := os.WriteFile(filepath.Join(blobs, sum), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		up := strings.Repeat("../", 2+strings.Count(rel, "/"))
		if err := os.Symlink(up+"blobs/"+sum, filepath.Join(snap, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Symlink("../../blobs/missing", filepath.Join(snap, "dangling.json"))
	_ = os.Symlink(secret, filepath.Join(snap, "tokenizer.json"))
	res, err := n.Service().Add(ctx, api.AddRequest{Path: snap, LinksWithin: repo, Name: "org/m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Name != "org/m" {
		t.Fatalf("added %+v", res)
	}
	skipped := map[string]bool{}
	for _, s := range res.Skipped {
		skipped[s.Path] = true
	}
	if !skipped["dangling.json"] || !skipped["tokenizer.json"] {
		t.Errorf("skipped %+v", res.Skipped)
	}
	// inspect of the snapshot folder reads through its links.
	views, _, err := content.DescribePath(snap)
	if err != nil || len(views) != 3 { // the link out is read too: inspect serves nothing
		t.Errorf("inspect of the snapshot: %d files, %v", len(views), err)
	}
	fis, err := n.Index.Files(res.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range fis {
		if hex.EncodeToString(fi.SHA256) != sha256hex([]byte(files[fi.Rel])) {
			t.Errorf("%s: sha256 %x is not its blob's name", fi.Rel, fi.SHA256)
		}
	}
}

// The Hub-compatible endpoint and the gateway serve a model the node does
// not hold by fetching it into its store first (pinned "served"); every
// byte they send is a verified chunk's.
func TestHTTPServesOverShoal(t *testing.T) {
	ctx := ctxT(t)
	seeder, _ := homeNode(t, home.Home{}, testConfig())
	mirror, _ := homeNode(t, home.Home{}, testConfig(seeder.Addrs()[0].String()))
	model, added := addModel(t, seeder, 82)
	if _, err := seeder.Service().Publish(ctx, api.PublishRequest{Name: "tiny", Root: added.Root}); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(hf.NewEndpoint(models{mirror}, nil))
	defer hub.Close()
	repo := seeder.Host.ID().String() + "/tiny"
	m, _, err := seeder.Index.Manifest(added.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		resp, err := http.Get(hub.URL + "/" + repo + "/resolve/main/" + f.Path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, _ := os.ReadFile(filepath.Join(model, filepath.FromSlash(f.Path)))
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("X-Repo-Commit") != hf.Commit(added.Root) {
			t.Fatalf("%s: %d, %d bytes, commit %q", f.Path, resp.StatusCode, len(body), resp.Header.Get("X-Repo-Commit"))
		}
	}
	if ri, err := mirror.Index.Root(added.Root); err != nil || ri.Pin == nil || ri.Pin.Reason != servedPin {
		t.Errorf("served model held as %+v (%v)", ri, err)
	}
	resp, err := http.Get(hub.URL + "/" + repo + "/resolve/main/no-such-file")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("X-Error-Code") != "EntryNotFound" {
			t.Errorf("missing file: %d %q", resp.StatusCode, resp.Header.Get("X-Error-Code"))
		}
	}

	// A root as revision: the publisher's, yes; another model, no.
	_, other := addModel(t, seeder, 83)
	for rev, want := range map[string]int{added.Root.String(): 200, other.Root.String(): 404} {
		resp, err := http.Get(hub.URL + "/api/models/" + repo + "/revision/" + rev)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("revision %s: %d, want %d", rev, resp.StatusCode, want)
		}
	}

	gw := httptest.NewServer(gateway.New(models{mirror}, nil))
	defer gw.Close()
	c := m.Chunks[0].CID.Cid
	req, _ := http.NewRequest("GET", gw.URL+"/ipfs/"+c.String(), nil)
	req.Header.Set("Accept", gateway.MediaRaw)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || content.VerifyBlock(c, block) != nil {
		t.Fatalf("raw block: %d, verify %v", resp.StatusCode, content.VerifyBlock(c, block))
	}
	req, _ = http.NewRequest("GET", gw.URL+"/models/"+added.Root.String()+"/"+m.Files[len(m.Files)-1].Path, nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	whole, _ := os.ReadFile(filepath.Join(model, filepath.FromSlash(m.Files[len(m.Files)-1].Path)))
	if resp.StatusCode != 206 || !bytes.Equal(part, whole[10:20]) {
		t.Errorf("range: %d %q", resp.StatusCode, part)
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
