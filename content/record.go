package content

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// A publisher record says: the holder of this key publishes root under
// name, as version seq. It travels as the payload of a libp2p signed
// envelope (domain-separated, signature over domain, payload type and
// payload), stored on the DHT under RecordKey and handed over with
// manifests. SPEC.md §7 states the format.

// Record limits and names.
const (
	// RecordDomain separates Shoal's signatures from every other use of
	// the same key.
	RecordDomain = "shoal-publisher-record"
	// RecordNamespace is the DHT key namespace of publisher records.
	RecordNamespace = "shoalname"
	// MaxNameLen caps a published name.
	MaxNameLen = 100
	// MaxEnvelope caps a marshalled envelope.
	MaxEnvelope = 4096
)

// recordCodec is the envelope payload type of a publisher record.
var recordCodec = []byte("/shoal/record/1")

// consumeEnvelope checks an envelope's signature and decodes its record:
// every signature check on a record goes through it (a variable so that
// tests can count them).
var consumeEnvelope = record.ConsumeTypedEnvelope

// Record is the signed statement.
type Record struct {
	Publisher []byte `cbor:"publisher"` // the signer's peer ID, binary
	Name      string `cbor:"name"`
	Root      Link   `cbor:"root"`
	Seq       uint64 `cbor:"seq"`
	Time      int64  `cbor:"time"`    // unix seconds when signed
	Expires   int64  `cbor:"expires"` // unix seconds; 0: never
}

var _ record.Record = (*Record)(nil)

// Domain is the signature domain.
func (r *Record) Domain() string { return RecordDomain }

// Codec is the payload type.
func (r *Record) Codec() []byte { return recordCodec }

// MarshalRecord encodes the record as canonical dag-cbor.
func (r *Record) MarshalRecord() ([]byte, error) { return encMode.Marshal(r) }

// UnmarshalRecord decodes a canonical record.
func (r *Record) UnmarshalRecord(b []byte) error {
	if len(b) > MaxEnvelope {
		return fmt.Errorf("%w: %d bytes", ErrBadRecord, len(b))
	}
	var d Record
	if err := decMode.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	again, err := encMode.Marshal(&d)
	if err != nil || !bytes.Equal(again, b) {
		return fmt.Errorf("%w: not canonical", ErrBadRecord)
	}
	*r = d
	return nil
}

// PublisherID is the record's publisher as a peer ID.
func (r *Record) PublisherID() (peer.ID, error) { return peer.IDFromBytes(r.Publisher) }

// Signed is a verified record with its envelope bytes.
type Signed struct {
	Record
	Envelope []byte
	Key      string // the publisher's key ID (peer ID text)
}

// CheckName accepts 1 to MaxNameLen characters of [A-Za-z0-9._-], not
// starting with a dot.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name must be 1 to %d characters", ErrBadRecord, MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: name %s starts with a dot", ErrBadRecord, Quote(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %s: only letters, digits, '.', '_' and '-'", ErrBadRecord, Quote(name))
		}
	}
	return nil
}

// Sign makes a signed record.
func Sign(key crypto.PrivKey, name string, root cid.Cid, seq uint64, now time.Time, ttl time.Duration) (*Signed, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := CheckCID(root); err != nil {
		return nil, err
	}
	if root.Type() != CodecDagCBOR {
		return nil, fmt.Errorf("%w: %s is a chunk, not a model root", ErrBadRecord, root)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	r := Record{Publisher: []byte(id), Name: name, Root: Link{root}, Seq: seq, Time: now.Unix()}
	if ttl > 0 {
		r.Expires = now.Add(ttl).Unix()
	}
	env, err := record.Seal(&r, key)
	if err != nil {
		return nil, err
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrBadRecord, len(b))
	}
	return &Signed{Record: r, Envelope: b, Key: id.String()}, nil
}

// OpenRecord checks an envelope: size, signature, that the signer is the
// record's publisher, the name, and the root CID. It does not check
// expiry (see Live), so an expired record can still be reported as such.
func OpenRecord(b []byte) (*Signed, error) {
	if len(b) > MaxEnvelope {
		return nil, fmt.Errorf("%w: envelope of %d bytes", ErrBadRecord, len(b))
	}
	var r Record
	env, err := consumeEnvelope(b, &r)
	if err != nil {
		if errors.Is(err, record.ErrInvalidSignature) {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if !bytes.Equal([]byte(signer), r.Publisher) {
		return nil, fmt.Errorf("%w: signed by %s on behalf of another key", ErrInvalidSignature, signer)
	}
	if err := CheckName(r.Name); err != nil {
		return nil, err
	}
	if r.Root.Type() != CodecDagCBOR {
		return nil, fmt.Errorf("%w: root %s is not a manifest", ErrBadRecord, r.Root.Cid)
	}
	return &Signed{Record: r, Envelope: b, Key: signer.String()}, nil
}

// openKept decodes an envelope this node kept: its signature was checked
// before it was kept (OpenRecord or Sign), so it is not checked again.
func openKept(b []byte) (*Signed, error) {
	b = bytes.Clone(b)
	env, err := record.UnmarshalEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if !bytes.Equal(env.PayloadType, recordCodec) {
		return nil, fmt.Errorf("%w: payload type %q", ErrBadRecord, env.PayloadType)
	}
	var r Record
	if err := r.UnmarshalRecord(env.RawPayload); err != nil {
		return nil, err
	}
	id, err := r.PublisherID()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return &Signed{Record: r, Envelope: b, Key: id.String()}, nil
}

// Live fails with ErrExpired for a record past its expiry at now.
func (s *Signed) Live(now time.Time) error {
	if s.Expires != 0 && now.Unix() >= s.Expires {
		return fmt.Errorf("%w: %s/%s seq %d expired %s", ErrExpired, s.Key, s.Name, s.Seq, time.Unix(s.Expires, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// RecordKey is the DHT key of a publisher's name.
func RecordKey(keyID, name string) string {
	return "/" + RecordNamespace + "/" + keyID + "/" + name
}

// ParseRecordKey splits a DHT record key.
func ParseRecordKey(k string) (keyID, name string, err error) {
	rest, ok := strings.CutPrefix(k, "/"+RecordNamespace+"/")
	if !ok {
		return "", "", fmt.Errorf("%w: key %s not in namespace %s", ErrBadRecord, Quote(k), RecordNamespace)
	}
	keyID, name, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: key %s", ErrBadRecord, Quote(k))
	}
	if _, err := peer.Decode(keyID); err != nil {
		return "", "", fmt.Errorf("%w: key %s: %v", ErrBadRecord, Quote(k), err)
	}
	return keyID, name, CheckName(name)
}

// RecordValidator is the DHT validator of the publisher-record namespace:
// every DHT node refuses to store a record whose signature does not verify,
// that is stored under another key or name, or that has expired; of two
// valid records the higher sequence wins (then the later time).
type RecordValidator struct {
	Now func() time.Time // nil: time.Now
}

// Validate checks a record stored under key.
func (v RecordValidator) Validate(key string, value []byte) error {
	keyID, name, err := ParseRecordKey(key)
	if err != nil {
		return err
	}
	s, err := OpenRecord(value)
	if err != nil {
		return err
	}
	if s.Key != keyID || s.Name != name {
		return fmt.Errorf("%w: record for %s/%s stored under %s", ErrBadRecord, s.Key, s.Name, Quote(key))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	return s.Live(now())
}

// Beats reports whether s is to be preferred to o, a record of the same
// name: the higher sequence, then the later time, then (two records
// signed with one sequence and one time: a key used from two places) the
// greater envelope, so that every node settles on the same one and no one
// can swap them back and forth.
func (s *Signed) Beats(o *Signed) bool {
	if s.Seq != o.Seq {
		return s.Seq > o.Seq
	}
	if s.Time != o.Time {
		return s.Time > o.Time
	}
	return bytes.Compare(s.Envelope, o.Envelope) > 0
}

// Select picks the best of several valid records.
func (v RecordValidator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := (*Signed)(nil), -1
	for i, b := range values {
		s, err := OpenRecord(b)
		if err != nil {
			continue
		}
		if best == nil || s.Beats(best) {
			best, bestIdx = s, i
		}
	}
	if bestIdx < 0 {
		return 0, fmt.Errorf("%w: no valid record among %d", ErrBadRecord, len(values))
	}
	return bestIdx, nil
}
