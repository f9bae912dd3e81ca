package content

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

var (
	bktBlocks = []byte("blocks")    // manifest block CID → bytes
	bktRoots  = []byte("roots")     // root CID → RootInfo (JSON)
	bktFiles  = []byte("files")     // root CID ‖ uint32 file index → FileInfo (JSON)
	bktChunks = []byte("chunks")    // chunk CID → Loc list
	bktRecs   = []byte("records")   // record DHT key → best envelope seen
	bktHigh   = []byte("highwater") // record DHT key → highest sequence seen (8 bytes)
	// root CID ‖ record DHT key → empty: the kept records naming root.
	// Derived from bktRecs: rebuilt at every open.
	bktRecRoots = []byte("recordroots")
)

// maxLocs bounds how many places one chunk is remembered at.
const maxLocs = 8

// RootInfo is what the index knows of a held root.
type RootInfo struct {
	Root   cid.Cid   `json:"root"`
	Name   string    `json:"name"`   // base name of what was added or fetched
	Dir    string    `json:"dir"`    // absolute folder the files are under
	Size   int64     `json:"size"`   // total bytes
	Files  int       `json:"files"`  // number of files
	Source string    `json:"source"` // "added" or "fetched"
	Time   time.Time `json:"time"`
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
		for _, b := range [][]byte{bktBlocks, bktRoots, bktFiles, bktChunks, bktRecs, bktHigh} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
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

// Put records a held root: its manifest blocks, its files and the place of
// each chunk. It is one transaction: all or nothing.
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
		info, _ := json.Marshal(h.Info)
		if err := tx.Bucket(bktRoots).Put(rootKey, info); err != nil {
			return err
		}
		fb := tx.Bucket(bktFiles)
		cb := tx.Bucket(bktChunks)
		for i, f := range h.Files {
			v, _ := json.Marshal(f)
			if err := fb.Put(fileKey(rootKey, uint32(i)), v); err != nil {
				return err
			}
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

func fileKey(root []byte, i uint32) []byte {
	k := make([]byte, len(root)+4)
	copy(k, root)
	binary.BigEndian.PutUint32(k[len(root):], i)
	return k
}

// Loc list encoding: repeated (uvarint len(root) ‖ root ‖ uvarint file ‖
// uvarint off ‖ uvarint len).
func addLoc(b *bolt.Bucket, key []byte, l Loc) error {
	old := b.Get(key)
	locs := decodeLocs(old)
	for _, o := range locs {
		if o.Root == l.Root && o.File == l.File && o.Off == l.Off {
			return nil
		}
	}
	if len(locs) >= maxLocs {
		return nil
	}
	v := append([]byte(nil), old...)
	rb := l.Root.Bytes()
	v = binary.AppendUvarint(v, uint64(len(rb)))
	v = append(v, rb...)
	v = binary.AppendUvarint(v, uint64(l.File))
	v = binary.AppendUvarint(v, uint64(l.Off))
	v = binary.AppendUvarint(v, uint64(l.Len))
	return b.Put(key, v)
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
		return json.Unmarshal(v, &ri)
	})
	return ri, err
}

// Roots lists the held roots.
func (x *Index) Roots() ([]RootInfo, error) {
	var out []RootInfo
	err := x.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktRoots).ForEach(func(_, v []byte) error {
			var ri RootInfo
			if err := json.Unmarshal(v, &ri); err != nil {
				return err
			}
			out = append(out, ri)
			return nil
		})
	})
	return out, err
}

// Files returns the held files of a root, in manifest order.
func (x *Index) Files(root cid.Cid) ([]FileInfo, error) {
	var out []FileInfo
	rk := root.Bytes()
	err := x.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktFiles).Cursor()
		for k, v := c.Seek(rk); k != nil && len(k) == len(rk)+4 && string(k[:len(rk)]) == string(rk); k, v = c.Next() {
			var fi FileInfo
			if err := json.Unmarshal(v, &fi); err != nil {
				return err
			}
			out = append(out, fi)
		}
		return nil
	})
	if err == nil && out == nil {
		err = ErrNotFound
	}
	return out, err
}

func (x *Index) file(root cid.Cid, i uint32) (FileInfo, error) {
	var fi FileInfo
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktFiles).Get(fileKey(root.Bytes(), i))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &fi)
	})
	return fi, err
}

// MarkChecked records that file i of root was hashed whole and matches
// its SHA256.
func (x *Index) MarkChecked(root cid.Cid, i uint32) error {
	return x.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktFiles)
		k := fileKey(root.Bytes(), i)
		v := b.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var fi FileInfo
		if err := json.Unmarshal(v, &fi); err != nil {
			return err
		}
		fi.Unchecked = false
		nv, err := json.Marshal(fi)
		if err != nil {
			return err
		}
		return b.Put(k, nv)
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
// from the first place it is held whose file is unchanged on disk. It fails
// with ErrNotFound when the chunk is not held and ErrChanged when every file
// holding it changed.
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
		if data, err = x.readLoc(l, buf[:l.Len]); err == nil {
			return data, nil
		}
	}
	return nil, err
}

func (x *Index) readLoc(l Loc, buf []byte) ([]byte, error) {
	fi, err := x.file(l.Root, l.File)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(fi.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrChanged, fi.Path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !fi.Unchanged(st) {
		return nil, fmt.Errorf("%w: %s", ErrChanged, fi.Path)
	}
	if _, err := f.ReadAt(buf, l.Off); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
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
	return x.db.Update(func(tx *bolt.Tx) error {
		hb := tx.Bucket(bktHigh)
		var hw uint64
		if v := hb.Get(key); len(v) == 8 {
			hw = binary.BigEndian.Uint64(v)
		}
		if s.Seq < hw {
			return fmt.Errorf("%w: %s/%s: have seen sequence %d, offered %d", ErrRollback, s.Key, s.Name, hw, s.Seq)
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
}

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
