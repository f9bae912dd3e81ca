package content

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

var (
	bktBlocks = []byte("blocks")    // manifest block CID → bytes
	bktRoots  = []byte("roots")     // root CID → rootSummary (JSON)
	bktChunks = []byte("chunks")    // chunk CID → Loc list
	bktRecs   = []byte("records")   // record DHT key → best envelope seen
	bktHigh   = []byte("highwater") // record DHT key → highest sequence seen (8 bytes)
	// root CID ‖ record DHT key → empty: the kept records naming root.
	// Derived from bktRecs: rebuilt at every open.
	bktRecRoots = []byte("recordroots")
)

// maxLocs bounds how many places one chunk is remembered at.
const maxLocs = 8

// RootInfo is what the index knows of a held root. A root may lie in
// several places (added in one folder, fetched into another); Name, Dir,
// Source and Time are those of the newest place.
type RootInfo struct {
	Root   cid.Cid   `json:"root"`
	Name   string    `json:"name"`   // base name of what was added or fetched
	Dir    string    `json:"dir"`    // absolute folder the files are under
	Size   int64     `json:"size"`   // total bytes
	Files  int       `json:"files"`  // number of files
	Source string    `json:"source"` // SourceAdded, SourceFetched or SourceStored
	Time   time.Time `json:"time"`
	Places []Place   `json:"places,omitempty"` // every place it lies, oldest first
	Pin    *Pin      `json:"pin,omitempty"`    // set when pinned
}

// FileInfo is one held file: where it lies and how it looked when added.
type FileInfo struct {
	Rel     string `json:"rel"`   // path in the manifest
	Path    string `json:"path"`  // absolute path on disk
	Size    int64  `json:"size"`  // bytes
	MtimeNs int64  `json:"mtime"` // modification time when added, ns
	SHA256  []byte `json:"sha256"`
	// Unchecked: SHA256 is the manifest's word, not yet hashed from the
	// bytes (a fetch verifies chunks, not whole files). The file's key is
	// announced only once it is checked (MarkChecked).
	Unchecked bool `json:"unchecked,omitempty"`
}

// Loc places a chunk in a held file.
type Loc struct {
	Root cid.Cid
	File uint32
	Off  int64
	Len  int64
}

// Index is the embedded store. Safe for concurrent use.
type Index struct {
	db *bolt.DB
	// OnRot, if set, is told of a held file whose bytes no longer match
	// the chunk read from it (set before the index is shared).
	OnRot func(root cid.Cid, f FileInfo, err error)
}

// OpenIndex opens (creating if needed) the index at path. It fails with
// ErrLocked when another process holds it.
func OpenIndex(path string) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktBlocks, bktRoots, bktPlaces, bktPlaceFiles, bktChunks, bktRecs, bktHigh, bktPins, bktFollows} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := migratePlaces(tx); err != nil {
			return err
		}
		return indexRecordRoots(tx)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Index{db: db}, nil
}

// Close closes the index.
func (x *Index) Close() error { return x.db.Close() }

// Held is everything to record about one root held on disk.
type Held struct {
	Info   RootInfo
	Blocks []Block
	Files  []FileInfo // in manifest order
	M      *Manifest
}

// Put records a held root at the place h.Info says (its Dir, Name, Source
// and Time): its manifest blocks, its files there and the place of each
// chunk. A root already held elsewhere keeps its other places; one already
// held in the same folder has that place replaced. It is one transaction:
// all or nothing.
func (x *Index) Put(h *Held) error {
	rootKey := h.M.Root.Bytes()
	h.Info.Root = h.M.Root
	return x.db.Update(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bktBlocks)
		for _, b := range h.Blocks {
			if err := bb.Put(b.CID.Bytes(), b.Data); err != nil {
				return err
			}
		}
		sum, _ := json.Marshal(rootSummary{Root: h.M.Root, Name: h.Info.Name, Size: h.Info.Size, Files: h.Info.Files})
		if err := tx.Bucket(bktRoots).Put(rootKey, sum); err != nil {
			return err
		}
		p := Place{ID: placeFor(tx, rootKey, h.Info.Dir), Dir: h.Info.Dir, Name: h.Info.Name, Source: h.Info.Source, Time: h.Info.Time}
		if err := putPlace(tx, rootKey, p, h.Files); err != nil {
			return err
		}
		cb := tx.Bucket(bktChunks)
		for i := range h.Files {
			off := int64(0)
			for _, c := range h.M.FileChunks(i) {
				loc := Loc{Root: h.M.Root, File: uint32(i), Off: off, Len: int64(c.Len)}
				if err := addLoc(cb, c.CID.Bytes(), loc); err != nil {
					return err
				}
				off += int64(c.Len)
			}
		}
		return nil
	})
}

// Loc list encoding: repeated (uvarint len(root) ‖ root ‖ uvarint file ‖
// uvarint off ‖ uvarint len).
func addLoc(b *bolt.Bucket, key []byte, l Loc) error {
	locs := decodeLocs(b.Get(key))
	for _, o := range locs {
		if o.Root == l.Root && o.File == l.File && o.Off == l.Off {
			return nil
		}
	}
	if len(locs) >= maxLocs {
		return nil
	}
	return b.Put(key, encodeLocs(append(locs, l)))
}

func encodeLocs(locs []Loc) []byte {
	var v []byte
	for _, l := range locs {
		rb := l.Root.Bytes()
		v = binary.AppendUvarint(v, uint64(len(rb)))
		v = append(v, rb...)
		v = binary.AppendUvarint(v, uint64(l.File))
		v = binary.AppendUvarint(v, uint64(l.Off))
		v = binary.AppendUvarint(v, uint64(l.Len))
	}
	return v
}

func decodeLocs(v []byte) []Loc {
	var locs []Loc
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return locs
		}
		v = v[k:]
		_, c, err := cid.CidFromBytes(v[:n])
		if err != nil {
			return locs
		}
		v = v[n:]
		var f [3]uint64
		for i := range f {
			x, k := binary.Uvarint(v)
			if k <= 0 {
				return locs
			}
			f[i], v = x, v[k:]
		}
		locs = append(locs, Loc{Root: c, File: uint32(f[0]), Off: int64(f[1]), Len: int64(f[2])})
	}
	return locs
}

// Block returns a stored manifest block.
func (x *Index) Block(c cid.Cid) ([]byte, error) {
	var out []byte
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktBlocks).Get(c.Bytes())
		if v == nil {
			return ErrNotFound
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Root returns what the index knows of a held root.
func (x *Index) Root(c cid.Cid) (RootInfo, error) {
	var ri RootInfo
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktRoots).Get(c.Bytes())
		if v == nil {
			return ErrNotFound
		}
		return rootInfo(tx, v, &ri)
	})
	return ri, err
}

// Roots lists the held roots.
func (x *Index) Roots() ([]RootInfo, error) {
	var out []RootInfo
	err := x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktRoots).ForEach(func(_, v []byte) error {
			var ri RootInfo
			if err := rootInfo(tx, v, &ri); err != nil {
				return err
			}
			out = append(out, ri)
			return nil
		})
	})
	return out, err
}

// rootInfo reads a root's summary and fills in its places and pin.
func rootInfo(tx *bolt.Tx, v []byte, ri *RootInfo) error {
	if err := json.Unmarshal(v, ri); err != nil {
		return err
	}
	rk := ri.Root.Bytes()
	ri.Places = places(tx, rk)
	if n := len(ri.Places); n > 0 {
		p := ri.Places[n-1]
		ri.Dir, ri.Name, ri.Source, ri.Time = p.Dir, p.Name, p.Source, p.Time
	}
	if pv := tx.Bucket(bktPins).Get(rk); pv != nil {
		var pin Pin
		if json.Unmarshal(pv, &pin) == nil {
			ri.Pin = &pin
		}
	}
	return nil
}

// Files returns the held files of a root at its newest place, in manifest
// order.
func (x *Index) Files(root cid.Cid) ([]FileInfo, error) {
	return x.PlaceFiles(root, "")
}

// PlaceFiles returns the held files of a root in folder dir ("" for its
// newest place), in manifest order.
func (x *Index) PlaceFiles(root cid.Cid, dir string) ([]FileInfo, error) {
	var out []FileInfo
	rk := root.Bytes()
	err := x.db.View(func(tx *bolt.Tx) error {
		ps := places(tx, rk)
		if len(ps) == 0 {
			return ErrNotFound
		}
		p := ps[len(ps)-1]
		if dir != "" {
			i := slices.IndexFunc(ps, func(p Place) bool { return p.Dir == dir })
			if i < 0 {
				return ErrNotFound
			}
			p = ps[i]
		}
		var err error
		out, err = placeFiles(tx, rk, p.ID)
		return err
	})
	if err == nil && out == nil {
		err = ErrNotFound
	}
	return out, err
}

// MarkChecked records that file i of root in folder dir was hashed whole
// and matches its SHA256.
func (x *Index) MarkChecked(root cid.Cid, dir string, i uint32) error {
	return x.updateFile(root, dir, i, func(fi *FileInfo) { fi.Unchecked = false })
}

// Rerecord records the size and modification time a held file has now,
// for a file whose bytes were just checked against the model (touched,
// or copied back, with the right bytes): it is served again.
func (x *Index) Rerecord(root cid.Cid, dir string, i uint32, size, mtimeNs int64) error {
	return x.updateFile(root, dir, i, func(fi *FileInfo) { fi.Size, fi.MtimeNs = size, mtimeNs })
}

func (x *Index) updateFile(root cid.Cid, dir string, i uint32, f func(*FileInfo)) error {
	rk := root.Bytes()
	return x.db.Update(func(tx *bolt.Tx) error {
		ps := places(tx, rk)
		k := slices.IndexFunc(ps, func(p Place) bool { return p.Dir == dir })
		if k < 0 {
			return ErrNotFound
		}
		b := tx.Bucket(bktPlaceFiles)
		key := placeFileKey(rk, ps[k].ID, i)
		v := b.Get(key)
		if v == nil {
			return ErrNotFound
		}
		var fi FileInfo
		if err := json.Unmarshal(v, &fi); err != nil {
			return err
		}
		f(&fi)
		nv, err := json.Marshal(fi)
		if err != nil {
			return err
		}
		return b.Put(key, nv)
	})
}

// Locs returns the places a chunk is held.
func (x *Index) Locs(c cid.Cid) []Loc {
	var locs []Loc
	_ = x.db.View(func(tx *bolt.Tx) error {
		locs = decodeLocs(tx.Bucket(bktChunks).Get(c.Bytes()))
		return nil
	})
	return locs
}

// Unchanged reports whether a held file still looks as it did when added:
// same size and modification time.
func (fi FileInfo) Unchanged(st os.FileInfo) bool {
	return st.Mode().IsRegular() && st.Size() == fi.Size && st.ModTime().UnixNano() == fi.MtimeNs
}

// ReadChunk reads a chunk of length n into buf (which must hold n bytes)
// from the first place it is held whose file is unchanged on disk and
// whose bytes still hash to c: bytes that rotted on disk (same size and
// mtime, other bytes) are never served; each such place is reported to
// OnRot. It fails with ErrNotFound when the chunk is not held and
// ErrChanged when every file holding it changed or rotted.
func (x *Index) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	locs := x.Locs(c)
	if len(locs) == 0 {
		return nil, ErrNotFound
	}
	err := ErrNotFound
	for _, l := range locs {
		if l.Len > int64(len(buf)) {
			continue
		}
		var data []byte
		if data, err = x.readLoc(l, c, buf[:l.Len]); err == nil {
			return data, nil
		}
	}
	return nil, err
}

// readLoc reads a chunk from the first place of its root whose file is
// unchanged on disk.
func (x *Index) readLoc(l Loc, c cid.Cid, buf []byte) ([]byte, error) {
	var files []FileInfo
	_ = x.db.View(func(tx *bolt.Tx) error {
		rk := l.Root.Bytes()
		for _, p := range places(tx, rk) {
			if v := tx.Bucket(bktPlaceFiles).Get(placeFileKey(rk, p.ID, l.File)); v != nil {
				var fi FileInfo
				if json.Unmarshal(v, &fi) == nil {
					files = append(files, fi)
				}
			}
		}
		return nil
	})
	err := ErrNotFound
	for _, fi := range files {
		var data []byte
		if data, err = readAt(fi, l.Off, buf); err != nil {
			continue
		}
		if err = VerifyBlock(c, data); err == nil {
			return data, nil
		}
		err = fmt.Errorf("%w: %s: bytes %d–%d no longer hash to chunk %s", ErrChanged, fi.Path, l.Off, l.Off+l.Len, c)
		if x.OnRot != nil {
			x.OnRot(l.Root, fi, err)
		}
	}
	return nil, err
}

// readAt reads len(buf) bytes at off from a held file that is unchanged
// on disk.
func readAt(fi FileInfo, off int64, buf []byte) ([]byte, error) {
	f, err := os.Open(fi.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrChanged, fi.Path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !fi.Unchanged(st) {
		return nil, fmt.Errorf("%w: %s", ErrChanged, fi.Path)
	}
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("%w: %s: %v", ErrChanged, fi.Path, err)
	}
	return buf, nil
}

// indexRecordRoots rebuilds bktRecRoots from the kept records. Doing it at
// every open migrates an index from before the bucket existed, and repairs
// one that such a version wrote records to since; it checks no signature.
func indexRecordRoots(tx *bolt.Tx) error {
	if tx.Bucket(bktRecRoots) != nil {
		if err := tx.DeleteBucket(bktRecRoots); err != nil {
			return err
		}
	}
	rr, err := tx.CreateBucket(bktRecRoots)
	if err != nil {
		return err
	}
	return tx.Bucket(bktRecs).ForEach(func(k, v []byte) error {
		if s, err := openKept(v); err == nil {
			return rr.Put(recordRootKey(s.Root.Cid, k), []byte{})
		}
		return nil
	})
}

func recordRootKey(root cid.Cid, key []byte) []byte {
	return append(root.Bytes(), key...)
}

// PutRecord keeps a verified record: it refuses one older than the highest
// sequence ever seen for its key (ErrRollback), keeps the newest, and raises
// the high-water mark, durably, so a restart does not forget it. The record
// is indexed by the root it names, for RecordsFor.
func (x *Index) PutRecord(s *Signed) error {
	key := []byte(RecordKey(s.Key, s.Name))
	err := x.db.Update(func(tx *bolt.Tx) error {
		hb := tx.Bucket(bktHigh)
		var hw uint64
		if v := hb.Get(key); len(v) == 8 {
			hw = binary.BigEndian.Uint64(v)
		}
		if s.Seq < hw {
			return fmt.Errorf("%w: %s/%s: have seen sequence %d, offered %d", ErrRollback, s.Key, s.Name, hw, s.Seq)
		}
		if v := tx.Bucket(bktRecs).Get(key); v != nil {
			if kept, err := openKept(v); err == nil && kept.Seq == s.Seq {
				if bytes.Equal(kept.Envelope, s.Envelope) {
					return errUnchanged
				}
				if kept.Beats(s) {
					return fmt.Errorf("%w: %s/%s: the record kept for sequence %d is newer", ErrRollback, s.Key, s.Name, s.Seq)
				}
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], s.Seq)
		if err := hb.Put(key, v[:]); err != nil {
			return err
		}
		rb, rr := tx.Bucket(bktRecs), tx.Bucket(bktRecRoots)
		if v := rb.Get(key); v != nil {
			if old, err := openKept(v); err == nil {
				if err := rr.Delete(recordRootKey(old.Root.Cid, key)); err != nil {
					return err
				}
			}
		}
		if err := rr.Put(recordRootKey(s.Root.Cid, key), []byte{}); err != nil {
			return err
		}
		return rb.Put(key, s.Envelope)
	})
	if err == errUnchanged {
		return nil
	}
	return err
}

// errUnchanged ends a PutRecord of the record already kept: nothing to do.
var errUnchanged = errors.New("record already kept")

// HighWater is the highest sequence seen for a publisher's name.
func (x *Index) HighWater(keyID, name string) uint64 {
	var hw uint64
	_ = x.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktHigh).Get([]byte(RecordKey(keyID, name))); len(v) == 8 {
			hw = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return hw
}

// Record returns the best record kept for a publisher's name.
func (x *Index) Record(keyID, name string) (*Signed, error) {
	var env []byte
	_ = x.db.View(func(tx *bolt.Tx) error {
		env = append([]byte(nil), tx.Bucket(bktRecs).Get([]byte(RecordKey(keyID, name)))...)
		return nil
	})
	if len(env) == 0 {
		return nil, ErrNotFound
	}
	return OpenRecord(env)
}

// Records returns every kept record whose signature still verifies.
func (x *Index) Records() []*Signed {
	var envs [][]byte
	_ = x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktRecs).ForEach(func(_, v []byte) error {
			envs = append(envs, append([]byte(nil), v...))
			return nil
		})
	})
	var out []*Signed
	for _, e := range envs {
		if s, err := OpenRecord(e); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// RecordsFor returns the kept records that name root. It reads only those
// and checks no signature again: they were verified when they were kept,
// and peers may ask for them as often as they like (threat 28).
func (x *Index) RecordsFor(root cid.Cid) []*Signed {
	var out []*Signed
	prefix := root.Bytes()
	_ = x.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bktRecs)
		c := tx.Bucket(bktRecRoots).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if s, err := openKept(rb.Get(k[len(prefix):])); err == nil && s.Root.Cid == root {
				out = append(out, s)
			}
		}
		return nil
	})
	return out
}

// UnmarshalJSON reads a RootInfo with its root either as Go writes a
// cid.Cid (a dag-json link) or as a plain string, as indexes written
// before roots were typed hold it.
func (ri *RootInfo) UnmarshalJSON(b []byte) error {
	type plain RootInfo
	var v struct {
		plain
		Root json.RawMessage `json:"root"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*ri = RootInfo(v.plain)
	return CIDFromJSON(v.Root, &ri.Root)
}

// CIDFromJSON reads a CID written either as Go writes a cid.Cid (the
// dag-json link {"/": "bafy…"}) or as a plain string; absent or null
// leaves into as it is.
func CIDFromJSON(raw json.RawMessage, into *cid.Cid) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		c, err := cid.Decode(s)
		if err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		*into = c
		return nil
	}
	return json.Unmarshal(raw, into)
}
