package content

import (
	"bytes"
	"errors"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	bolt "go.etcd.io/bbolt"
)

func newKey(t testing.TB) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRecordSignOpen(t *testing.T) {
	k := newKey(t)
	root := SumCID(CodecDagCBOR, []byte("model"))
	now := time.Unix(1_800_000_000, 0)
	s, err := Sign(k, "llama-3-8b", root, 5, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenRecord(s.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	if got.Key != id.String() || got.Name != "llama-3-8b" || got.Root.Cid != root || got.Seq != 5 {
		t.Fatalf("round trip: %+v", got)
	}
	if err := got.Live(now.Add(59 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := got.Live(now.Add(61 * time.Minute)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired record: err = %v", err)
	}
	v := RecordValidator{Now: func() time.Time { return now }}
	key := RecordKey(got.Key, got.Name)
	if err := v.Validate(key, s.Envelope); err != nil {
		t.Fatal(err)
	}
	// Under another name or another key's namespace: refused.
	if err := v.Validate(RecordKey(got.Key, "other"), s.Envelope); err == nil {
		t.Fatal("record accepted under another name")
	}
	other, _ := peer.IDFromPrivateKey(newKey(t))
	if err := v.Validate(RecordKey(other.String(), got.Name), s.Envelope); err == nil {
		t.Fatal("record accepted under another key")
	}
	// Select: the higher sequence wins, whatever the order.
	s6, _ := Sign(k, "llama-3-8b", root, 6, now, 0)
	if i, err := v.Select(key, [][]byte{s.Envelope, s6.Envelope}); err != nil || i != 1 {
		t.Fatalf("select = %d %v", i, err)
	}
	if i, err := v.Select(key, [][]byte{s6.Envelope, []byte("junk"), s.Envelope}); err != nil || i != 0 {
		t.Fatalf("select = %d %v", i, err)
	}
}

func TestRecordRefusals(t *testing.T) {
	k := newKey(t)
	root := SumCID(CodecDagCBOR, []byte("model"))
	now := time.Now()
	good, err := Sign(k, "m", root, 1, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A forged signature: the payload changed after signing.
	forged, _ := record.UnmarshalEnvelope(good.Envelope)
	forged.RawPayload = append([]byte(nil), forged.RawPayload...)
	forged.RawPayload[len(forged.RawPayload)-1] ^= 1
	fb, _ := forged.Marshal()
	if _, err := OpenRecord(fb); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("forged payload: err = %v", err)
	}
	// A wrong key: signed by mallory, claiming alice as publisher.
	alice, _ := peer.IDFromPrivateKey(k)
	r := Record{Publisher: []byte(alice), Name: "m", Root: Link{root}, Seq: 9, Time: now.Unix()}
	e, err := record.Seal(&r, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := e.Marshal()
	if _, err := OpenRecord(wb); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("wrong key: err = %v", err)
	}
	for name, b := range map[string][]byte{
		"truncated": good.Envelope[:len(good.Envelope)/2],
		"oversized": append(append([]byte(nil), good.Envelope...), make([]byte, MaxEnvelope)...),
		"empty":     nil,
	} {
		if _, err := OpenRecord(b); err == nil {
			t.Errorf("%s envelope accepted", name)
		}
	}
	if _, err := Sign(k, strings.Repeat("x", MaxNameLen+1), root, 1, now, 0); err == nil {
		t.Error("name over the limit accepted")
	}
	for _, n := range []string{"", "a/b", ".hidden", "sp ace", "é"} {
		if CheckName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	if _, err := Sign(k, "m", SumCID(CodecRaw, []byte("x")), 1, now, 0); err == nil {
		t.Error("record naming a chunk signed")
	}
}

// Threat 12: rollback refused, and still refused after a restart.
func TestRecordHighWaterSurvivesRestart(t *testing.T) {
	k := newKey(t)
	root := SumCID(CodecDagCBOR, []byte("model"))
	path := filepath.Join(t.TempDir(), "index.db")
	idx, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	s5, _ := Sign(k, "m", root, 5, time.Now(), 0)
	s4, _ := Sign(k, "m", root, 4, time.Now(), 0)
	if err := idx.PutRecord(s5); err != nil {
		t.Fatal(err)
	}
	if err := idx.PutRecord(s4); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback: err = %v", err)
	}
	idx.Close()
	idx, err = OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if err := idx.PutRecord(s4); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback after restart: err = %v", err)
	}
	if hw := idx.HighWater(s5.Key, "m"); hw != 5 {
		t.Fatalf("high water %d", hw)
	}
	if got := idx.RecordsFor(root); len(got) != 1 || got[0].Seq != 5 {
		t.Fatalf("records for root: %+v", got)
	}
}

func FuzzOpenRecord(f *testing.F) {
	k, _, _ := crypto.GenerateEd25519Key(nil)
	s, _ := Sign(k, "m", SumCID(CodecDagCBOR, []byte("x")), 3, time.Unix(1e9, 0), time.Hour)
	f.Add(s.Envelope)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := OpenRecord(b)
		if err != nil {
			return
		}
		if CheckName(got.Name) != nil || got.Root.Type() != CodecDagCBOR || len(got.Envelope) > MaxEnvelope {
			t.Fatal("accepted a record breaking a rule")
		}
	})
}

// Every bad record is dropped by the DHT validator, with its reason.
func TestRecordValidatorRefusals(t *testing.T) {
	k := newKey(t)
	id, _ := peer.IDFromPrivateKey(k)
	root := SumCID(CodecDagCBOR, []byte("model"))
	now := time.Unix(1_800_000_000, 0)
	v := RecordValidator{Now: func() time.Time { return now }}
	good, _ := Sign(k, "m", root, 1, now, time.Hour)
	expired, _ := Sign(k, "m", root, 2, now.Add(-2*time.Hour), time.Hour)
	forged, _ := record.UnmarshalEnvelope(good.Envelope)
	forged.RawPayload = append([]byte(nil), forged.RawPayload...)
	forged.RawPayload[3] ^= 1
	forgedB, _ := forged.Marshal()
	r := Record{Publisher: []byte(id), Name: "m", Root: Link{root}, Seq: 3, Time: now.Unix()}
	e, _ := record.Seal(&r, newKey(t))
	wrongKey, _ := e.Marshal()
	key := RecordKey(id.String(), "m")
	cases := map[string]struct {
		key   string
		value []byte
		want  error
	}{
		"forged signature": {key, forgedB, ErrInvalidSignature},
		"wrong key":        {key, wrongKey, ErrInvalidSignature},
		"expired":          {key, expired.Envelope, ErrExpired},
		"truncated":        {key, good.Envelope[:40], ErrBadRecord},
		"oversized":        {key, make([]byte, MaxEnvelope+1), ErrBadRecord},
		"other name":       {RecordKey(id.String(), "n"), good.Envelope, ErrBadRecord},
		"name too long":    {RecordKey(id.String(), strings.Repeat("n", MaxNameLen+1)), good.Envelope, ErrBadRecord},
		"other namespace":  {"/ipns/" + id.String(), good.Envelope, ErrBadRecord},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := v.Validate(c.key, c.value); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if err := v.Validate(key, good.Envelope); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
}

// countChecks counts the record signature checks made until the test ends.
func countChecks(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := consumeEnvelope
	consumeEnvelope = func(b []byte, r record.Record) (*record.Envelope, error) {
		n.Add(1)
		return orig(b, r)
	}
	t.Cleanup(func() { consumeEnvelope = orig })
	return &n
}

// Records are verified when kept, so serving those that name one root
// costs no signature check, however many other records are kept (threat
// 28: with 305 records kept, a flood of records requests used a core).
func TestRecordsForChecksNoSignatures(t *testing.T) {
	idx, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	idx.db.NoSync = true
	k, k2 := newKey(t), newKey(t)
	root := SumCID(CodecDagCBOR, []byte("model"))
	other := SumCID(CodecDagCBOR, []byte("other model"))
	put := func(k crypto.PrivKey, name string, root cid.Cid, seq uint64) *Signed {
		t.Helper()
		s, err := Sign(k, name, root, seq, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.PutRecord(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i := range 300 {
		put(k, "m"+strconv.Itoa(i), SumCID(CodecDagCBOR, []byte(strconv.Itoa(i))), 1)
	}
	a := put(k, "a", root, 1)
	b := put(k2, "b", root, 7)
	put(k2, "moved", root, 1)
	moved := put(k2, "moved", other, 2) // names another root now
	checks := countChecks(t)
	got := idx.RecordsFor(root)
	if n := checks.Load(); n != 0 {
		t.Errorf("RecordsFor made %d signature checks, want 0", n)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	if len(got) != 2 {
		t.Fatalf("RecordsFor(root) = %d records, want 2 (a, b)", len(got))
	}
	for i, want := range []*Signed{a, b} {
		if g := got[i]; g.Key != want.Key || g.Name != want.Name || g.Seq != want.Seq || g.Root != want.Root ||
			g.Time != want.Time || !bytes.Equal(g.Envelope, want.Envelope) {
			t.Errorf("record %d = %+v, want %+v", i, g, want)
		}
	}
	if got := idx.RecordsFor(other); len(got) != 1 || got[0].Seq != moved.Seq {
		t.Errorf("RecordsFor(other) = %+v, want the moved record", got)
	}
}

// An index written before records were indexed by root (or since by such
// a version) is indexed again when it is opened.
func TestRecordsForAfterUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	idx, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	root := SumCID(CodecDagCBOR, []byte("model"))
	s, _ := Sign(k, "m", root, 1, time.Now(), 0)
	s2, _ := Sign(k, "n", root, 1, time.Now(), 0)
	if err := idx.PutRecord(s); err != nil {
		t.Fatal(err)
	}
	// What an older version leaves: no by-root bucket, or a record kept
	// without its by-root entry.
	err = idx.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bktRecRoots); err != nil {
			return err
		}
		return tx.Bucket(bktRecs).Put([]byte(RecordKey(s2.Key, s2.Name)), s2.Envelope)
	})
	if err != nil {
		t.Fatal(err)
	}
	idx.Close()
	if idx, err = OpenIndex(path); err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if got := idx.RecordsFor(root); len(got) != 2 {
		t.Fatalf("RecordsFor after reopening = %d records, want 2", len(got))
	}
}

// Two records signed with one sequence (a key used from two places) do
// not take turns: the later one is kept, whatever order they come in, and
// the earlier is refused as a rollback (found by the attacker subagent).
func TestSameSequenceDoesNotSwap(t *testing.T) {
	k := newKey(t)
	idx, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	now := time.Now()
	older, _ := Sign(k, "m", SumCID(CodecDagCBOR, []byte("a")), 4, now.Add(-time.Hour), 0)
	newer, _ := Sign(k, "m", SumCID(CodecDagCBOR, []byte("b")), 4, now, 0)
	for i, s := range []*Signed{newer, older, newer, older} {
		err := idx.PutRecord(s)
		if s == older && !errors.Is(err, ErrRollback) || s == newer && err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if kept, _ := idx.Record(s.Key, "m"); kept.Root.Cid != newer.Root.Cid {
			t.Fatalf("after put %d the kept record names %s", i, kept.Root.Cid)
		}
	}
	if !newer.Beats(older) || older.Beats(newer) || newer.Beats(newer) {
		t.Fatal("Beats is not a strict order")
	}
}
