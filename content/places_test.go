package content

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// placedModel imports a small model and copies its files to a second
// folder, as a fetch into another folder would leave them.
func placedModel(t *testing.T) (idx *Index, im *Imported, a, b string) {
	t.Helper()
	a, b = filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if _, err := testmodel.Folder(a, 3, 7); err != nil {
		t.Fatal(err)
	}
	im, err := Import(t.Context(), a, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idx, err = OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	if err := idx.Put(im.Held(SourceAdded)); err != nil {
		t.Fatal(err)
	}
	var files []FileInfo
	for _, f := range im.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(b, f.Rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		f.Path, f.MtimeNs = p, st.ModTime().UnixNano()
		files = append(files, f)
	}
	h := im.Held(SourceFetched)
	h.Info.Dir, h.Info.Time, h.Files = b, time.Now().UTC().Add(time.Second), files
	if err := idx.Put(h); err != nil {
		t.Fatal(err)
	}
	return idx, im, a, b
}

// A root added in one folder and fetched into another is held in both and
// served from either while either is intact (issue 11).
func TestOneRootManyPlaces(t *testing.T) {
	idx, im, a, b := placedModel(t)
	root := im.M.Root
	ri, err := idx.Root(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ri.Places) != 2 || ri.Places[0].Dir != a || ri.Places[1].Dir != b || ri.Dir != b || ri.Source != SourceFetched {
		t.Fatalf("places %+v, newest %s %s", ri.Places, ri.Dir, ri.Source)
	}
	chunk := im.M.Chunks[0]
	buf := make([]byte, MaxChunk)
	read := func() error {
		data, err := idx.ReadChunk(chunk.CID.Cid, buf)
		if err == nil {
			err = VerifyBlock(chunk.CID.Cid, data)
		}
		return err
	}
	// The newest copy is damaged (its mtime moves): the first still serves.
	if err := os.WriteFile(filepath.Join(b, im.Files[0].Rel), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Fatalf("with the fetched copy changed, the added one should serve: %v", err)
	}
	// Both gone: nothing is served.
	if err := os.Remove(filepath.Join(a, im.Files[0].Rel)); err != nil {
		t.Fatal(err)
	}
	if err := read(); !errors.Is(err, ErrChanged) {
		t.Fatalf("both copies changed: %v", err)
	}
	// Files of each place are its own.
	fa, err := idx.PlaceFiles(root, a)
	if err != nil || fa[0].Path != filepath.Join(a, im.Files[0].Rel) {
		t.Fatalf("files at a: %v %v", fa, err)
	}
	// Forgetting one place keeps the other; forgetting the last drops the
	// root, its chunk places and its blocks.
	if gone, err := idx.Forget(root, b); err != nil || gone {
		t.Fatalf("forget b: gone %v, %v", gone, err)
	}
	if ri, _ := idx.Root(root); len(ri.Places) != 1 || ri.Dir != a {
		t.Fatalf("after forgetting b: %+v", ri.Places)
	}
	if gone, err := idx.Forget(root, a); err != nil || !gone {
		t.Fatalf("forget a: gone %v, %v", gone, err)
	}
	if _, err := idx.Root(root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("root still there: %v", err)
	}
	if locs := idx.Locs(chunk.CID.Cid); len(locs) != 0 {
		t.Fatalf("chunk places left: %v", locs)
	}
	if _, err := idx.Block(root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("root block left: %v", err)
	}
	if _, err := idx.Forget(root, a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forgetting twice: %v", err)
	}
}

// An index written before places (one folder a root) opens with each root
// at place 0, files and all.
func TestIndexMigratesToPlaces(t *testing.T) {
	dir := t.TempDir()
	if _, err := testmodel.Folder(dir, 2, 3); err != nil {
		t.Fatal(err)
	}
	im, err := Import(t.Context(), dir, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		roots, _ := tx.CreateBucket(bktRoots)
		files, _ := tx.CreateBucket(bktFilesV1)
		rk := im.M.Root.Bytes()
		old, _ := json.Marshal(map[string]any{"root": im.M.Root.String(), "name": im.Name, "dir": im.Dir, "size": im.M.Size(),
			"files": len(im.Files), "source": "added", "time": time.Now().UTC()})
		if err := roots.Put(rk, old); err != nil {
			return err
		}
		for i, f := range im.Files {
			v, _ := json.Marshal(f)
			if err := files.Put(binary.BigEndian.AppendUint32(append([]byte(nil), rk...), uint32(i)), v); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ri, err := idx.Root(im.M.Root)
	if err != nil || len(ri.Places) != 1 || ri.Dir != im.Dir || ri.Source != SourceAdded {
		t.Fatalf("migrated root: %+v, %v", ri, err)
	}
	files, err := idx.Files(im.M.Root)
	if err != nil || len(files) != len(im.Files) || files[1].Path != im.Files[1].Path {
		t.Fatalf("migrated files: %v, %v", files, err)
	}
}

func TestPinsAndFollows(t *testing.T) {
	idx, im, _, _ := placedModel(t)
	root := im.M.Root
	if err := idx.PinRoot(root, "user"); err != nil {
		t.Fatal(err)
	}
	if err := idx.PinRoot(root, "later"); err != nil {
		t.Fatal(err)
	}
	pins, err := idx.Pins()
	if err != nil || len(pins) != 1 || pins[0].Root != root || pins[0].Reason != "user" {
		t.Fatalf("pins %+v %v", pins, err)
	}
	if ri, _ := idx.Root(root); ri.Pin == nil {
		t.Fatal("root info lacks its pin")
	}
	if had, _ := idx.Unpin(root); !had {
		t.Fatal("unpin: no pin")
	}
	if had, _ := idx.Unpin(root); had {
		t.Fatal("unpin twice")
	}
	if err := idx.PutFollow(Follow{Key: "k1", Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if fs, _ := idx.Follows(); len(fs) != 1 || fs[0].Name != "alice" {
		t.Fatalf("follows %+v", fs)
	}
	if had, _ := idx.Unfollow("k1"); !had {
		t.Fatal("unfollow")
	}
}
