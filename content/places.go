package content

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// Where a root's files came from. Only SourceStored files were written by
// the node for itself (into its own store); gc deletes nothing else.
const (
	SourceAdded   = "added"   // a user's folder, served in place
	SourceFetched = "fetched" // written by a get into a folder the user chose
	SourceStored  = "stored"  // fetched by the node into its store (pins, follows)
)

var (
	bktPlaces     = []byte("places")     // root CID ‖ uint32 place → Place (JSON)
	bktPlaceFiles = []byte("placefiles") // root CID ‖ uint32 place ‖ uint32 file → FileInfo (JSON)
	bktPins       = []byte("pins")       // root CID → Pin (JSON)
	bktFollows    = []byte("follows")    // publisher key ID → Follow (JSON)
	// Before places: root CID ‖ uint32 file → FileInfo, one place a root.
	// Migrated to place 0 at open, then dropped.
	bktFilesV1 = []byte("files")
)

// Place is one folder a root lies in.
type Place struct {
	ID     uint32    `json:"id"`
	Dir    string    `json:"dir"`    // absolute folder the files are under
	Name   string    `json:"name"`   // base name of what was added or fetched
	Source string    `json:"source"` // SourceAdded, SourceFetched or SourceStored
	Time   time.Time `json:"time"`
	// Damaged: a scrub found a file here that no longer matches the
	// model, and could not heal it.
	Damaged bool `json:"damaged,omitempty"`
	// DirID is the folder's device and inode when it was recorded.
	DirID string `json:"dir_id,omitempty"`
}

// SameDir reports whether the place's folder is still the one recorded:
// a real folder (not a link), not moved away and replaced.
func (p Place) SameDir() bool {
	id := dirID(p.Dir)
	return id != "" && id == p.DirID
}

// Servable reports whether some place of the root is not known damaged:
// a root with none is neither announced nor offered as complete.
func (ri RootInfo) Servable() bool {
	for _, p := range ri.Places {
		if !p.Damaged {
			return true
		}
	}
	return len(ri.Places) == 0
}

// SetDamaged marks root's place in folder dir damaged or not.
func (x *Index) SetDamaged(root cid.Cid, dir string, damaged bool) error {
	rk := root.Bytes()
	return x.db.Update(func(tx *bolt.Tx) error {
		for _, p := range places(tx, rk) {
			if p.Dir == dir {
				p.Damaged = damaged
				v, _ := json.Marshal(p)
				return tx.Bucket(bktPlaces).Put(placeKey(rk, p.ID), v)
			}
		}
		return ErrNotFound
	})
}

// Pin marks a root to keep: gc never collects it.
type Pin struct {
	Root   cid.Cid   `json:"root"`
	Reason string    `json:"reason"` // "user", "add", or "follow KEY/NAME"
	Time   time.Time `json:"time"`
}

// Follow is a publisher a mirror follows.
type Follow struct {
	Key  string    `json:"key"`            // publisher key ID
	Name string    `json:"name,omitempty"` // petname it was followed by
	Time time.Time `json:"time"`
}

// rootSummary is what bktRoots holds: what every place of a root shares.
type rootSummary struct {
	Root  cid.Cid `json:"root"`
	Name  string  `json:"name"`
	Size  int64   `json:"size"`
	Files int     `json:"files"`
}

func placeKey(root []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), root...), id)
}

func placeFileKey(root []byte, id, i uint32) []byte {
	return binary.BigEndian.AppendUint32(placeKey(root, id), i)
}

// places lists a root's places, oldest first.
func places(tx *bolt.Tx, root []byte) []Place {
	var out []Place
	c := tx.Bucket(bktPlaces).Cursor()
	for k, v := c.Seek(root); k != nil && len(k) == len(root)+4 && bytes.HasPrefix(k, root); k, v = c.Next() {
		var p Place
		if json.Unmarshal(v, &p) == nil {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Place) int { return a.Time.Compare(b.Time) })
	return out
}

// placeFor returns the ID of root's place in dir, or a new one.
func placeFor(tx *bolt.Tx, root []byte, dir string) uint32 {
	var next uint32
	for _, p := range places(tx, root) {
		if p.Dir == dir {
			return p.ID
		}
		next = max(next, p.ID+1)
	}
	return next
}

// putPlace writes a place and its files, replacing what it held.
func putPlace(tx *bolt.Tx, root []byte, p Place, files []FileInfo) error {
	p.DirID = dirID(p.Dir)
	if err := deletePrefix(tx.Bucket(bktPlaceFiles), placeKey(root, p.ID)); err != nil {
		return err
	}
	v, _ := json.Marshal(p)
	if err := tx.Bucket(bktPlaces).Put(placeKey(root, p.ID), v); err != nil {
		return err
	}
	fb := tx.Bucket(bktPlaceFiles)
	for i, f := range files {
		v, _ := json.Marshal(f)
		if err := fb.Put(placeFileKey(root, p.ID, uint32(i)), v); err != nil {
			return err
		}
	}
	return nil
}

func placeFiles(tx *bolt.Tx, root []byte, id uint32) ([]FileInfo, error) {
	var out []FileInfo
	prefix := placeKey(root, id)
	c := tx.Bucket(bktPlaceFiles).Cursor()
	for k, v := c.Seek(prefix); k != nil && len(k) == len(prefix)+4 && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var fi FileInfo
		if err := json.Unmarshal(v, &fi); err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// migratePlaces moves an index from before places (one folder a root, its
// files under root ‖ file) to place 0 of each root.
func migratePlaces(tx *bolt.Tx) error {
	old := tx.Bucket(bktFilesV1)
	if old == nil {
		return nil
	}
	err := tx.Bucket(bktRoots).ForEach(func(k, v []byte) error {
		var ri RootInfo
		if err := json.Unmarshal(v, &ri); err != nil {
			return err
		}
		rk := ri.Root.Bytes()
		var files []FileInfo
		c := old.Cursor()
		for fk, fv := c.Seek(rk); fk != nil && len(fk) == len(rk)+4 && bytes.HasPrefix(fk, rk); fk, fv = c.Next() {
			var fi FileInfo
			if err := json.Unmarshal(fv, &fi); err != nil {
				return err
			}
			files = append(files, fi)
		}
		return putPlace(tx, rk, Place{Dir: ri.Dir, Name: ri.Name, Source: ri.Source, Time: ri.Time}, files)
	})
	if err != nil {
		return err
	}
	return tx.DeleteBucket(bktFilesV1)
}

// Forget removes root's place in folder dir from the index; no file is
// touched. When it was the root's last place, the root goes too: its
// chunks' places, and the manifest blocks no other held root uses (its
// pin stays: a pinned root the node no longer holds is one to fetch
// again). It reports whether the root is gone.
func (x *Index) Forget(root cid.Cid, dir string) (gone bool, err error) {
	m, _, merr := x.Manifest(root)
	rk := root.Bytes()
	err = x.db.Update(func(tx *bolt.Tx) error {
		ps := places(tx, rk)
		i := slices.IndexFunc(ps, func(p Place) bool { return p.Dir == dir })
		if i < 0 {
			return ErrNotFound
		}
		if err := deletePrefix(tx.Bucket(bktPlaceFiles), placeKey(rk, ps[i].ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bktPlaces).Delete(placeKey(rk, ps[i].ID)); err != nil {
			return err
		}
		if len(ps) > 1 {
			return nil
		}
		gone = true
		if err := tx.Bucket(bktRoots).Delete(rk); err != nil {
			return err
		}
		if merr != nil {
			return nil // no manifest to walk: its chunks' places fail their lookup
		}
		return dropRoot(tx, m)
	})
	return gone, err
}

// dropRoot removes a forgotten root's chunk places and the manifest blocks
// no other held root uses.
func dropRoot(tx *bolt.Tx, m *Manifest) error {
	cb := tx.Bucket(bktChunks)
	for _, c := range m.Chunks {
		k := c.CID.Bytes()
		locs := decodeLocs(cb.Get(k))
		kept := slices.DeleteFunc(locs, func(l Loc) bool { return l.Root == m.Root })
		var err error
		if len(kept) == 0 {
			err = cb.Delete(k)
		} else {
			err = cb.Put(k, encodeLocs(kept))
		}
		if err != nil {
			return err
		}
	}
	used := map[cid.Cid]bool{}
	bb := tx.Bucket(bktBlocks)
	get := func(c cid.Cid) ([]byte, error) {
		if v := bb.Get(c.Bytes()); v != nil {
			return v, nil
		}
		return nil, ErrNotFound
	}
	err := tx.Bucket(bktRoots).ForEach(func(k, _ []byte) error {
		_, c, err := cid.CidFromBytes(k)
		if err != nil {
			return nil
		}
		if _, blocks, err := AssembleManifest(c, get); err == nil {
			for _, b := range blocks {
				used[b.CID] = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, blocks, err := AssembleManifest(m.Root, get)
	if err != nil {
		return nil
	}
	for _, b := range blocks {
		if !used[b.CID] {
			if err := bb.Delete(b.CID.Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}

// PinRoot pins root for reason; pinning a pinned root keeps the first pin.
func (x *Index) PinRoot(root cid.Cid, reason string) error {
	return x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPins)
		if b.Get(root.Bytes()) != nil {
			return nil
		}
		v, _ := json.Marshal(Pin{Root: root, Reason: reason, Time: time.Now().UTC()})
		return b.Put(root.Bytes(), v)
	})
}

// Unpin removes root's pin and reports whether there was one.
func (x *Index) Unpin(root cid.Cid) (bool, error) {
	var had bool
	err := x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPins)
		had = b.Get(root.Bytes()) != nil
		return b.Delete(root.Bytes())
	})
	return had, err
}

// Pins lists the pins.
func (x *Index) Pins() ([]Pin, error) {
	return listJSON[Pin](x, bktPins)
}

// PutFollow records a followed publisher (replacing an earlier follow of
// the same key).
func (x *Index) PutFollow(f Follow) error {
	return x.db.Update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(f)
		return tx.Bucket(bktFollows).Put([]byte(f.Key), v)
	})
}

// Unfollow removes a followed publisher and reports whether it was one.
func (x *Index) Unfollow(key string) (bool, error) {
	var had bool
	err := x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktFollows)
		had = b.Get([]byte(key)) != nil
		return b.Delete([]byte(key))
	})
	return had, err
}

// Follows lists the followed publishers.
func (x *Index) Follows() ([]Follow, error) {
	return listJSON[Follow](x, bktFollows)
}

func listJSON[T any](x *Index, bucket []byte) ([]T, error) {
	var out []T
	err := x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var t T
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}
