package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// ID is the protocol ID of the exchange. Change the encoding, bump it.
// 1.1.0 added the have-map request, 1.2.0 the records request.
const ID = "/shoal/xfer/1.2.0"

// Limits.
const (
	// MaxRequest caps a request frame's body.
	MaxRequest = 1 + 10 + content.MaxCIDLen
	// MaxFrame caps a response frame's body: a full block plus a header.
	MaxFrame = content.MaxBlock + 1 + 10
	// MaxErrorText caps the text of an error reply.
	MaxErrorText = 256
	// MaxInFlight is how many requests a client keeps outstanding on one
	// stream; a server reads no further ahead than this.
	MaxInFlight = 32
)

// Request kinds, the first byte of a request body.
const (
	KindGet     byte = 0x01 // a block by CID
	KindHave    byte = 0x02 // the have-map of a root
	KindRecords byte = 0x03 // the signed publisher records naming a root
)

// Response kinds.
const (
	kindBlock   = 0x81
	kindError   = 0x82
	kindHave    = 0x83
	kindRecords = 0x84
)

// MaxRecords caps the records in one reply; MaxRecordsReply its body.
const (
	MaxRecords      = 16
	MaxRecordsReply = MaxRecords * (content.MaxEnvelope + 2)
)

// MaxHaveMap caps a have-map's bitfield: one bit per chunk reference of
// the manifest, so up to 8 Mi chunks (8 TiB of 1 MiB chunks).
const MaxHaveMap = content.MaxBlock

// HaveMap says which chunks of a root a peer holds: all of them, or those
// whose bit is set in Bits (bit i of the manifest's chunk list is
// Bits[i/8] & (1 << (i%8))). A peer still fetching also sets in Coming the
// chunks it has asked for and not yet received, so that fetchers of one
// model ask a seeder for different chunks.
type HaveMap struct {
	Complete bool
	Bits     []byte
	Coming   []byte // same layout as Bits; empty or as long as Bits
}

// Soon reports whether chunk reference i is on its way to the peer.
func (h HaveMap) Soon(i int) bool {
	return i/8 < len(h.Coming) && h.Coming[i/8]&(1<<(i%8)) != 0
}

// Has reports whether chunk reference i is held.
func (h HaveMap) Has(i int) bool {
	return h.Complete || (i/8 < len(h.Bits) && h.Bits[i/8]&(1<<(i%8)) != 0)
}

// Code is an error reply's reason.
type Code byte

// Error codes.
const (
	CodeNotFound    Code = 1 // the peer does not hold the block
	CodeTooLarge    Code = 2 // the block exceeds a limit
	CodeBusy        Code = 3 // the peer is overloaded; ask elsewhere
	CodeBadRequest  Code = 4 // the request did not parse or was refused
	CodeUnavailable Code = 5 // held, but the file changed on disk
)

func (c Code) err() error {
	switch c {
	case CodeNotFound:
		return ErrNotFound
	case CodeBusy:
		return ErrBusy
	case CodeUnavailable:
		return ErrUnavailable
	}
	return ErrRefused
}

// readLength reads a frame's length prefix. A clean end of the stream is
// io.EOF; a varint cut short or too long is ErrMalformed; anything else
// is what the stream said (a reset, a deadline), not a malformed message.
func readLength(r *bufio.Reader) (uint64, error) {
	n, err := binary.ReadUvarint(r)
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return n, err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, fmt.Errorf("%w: length cut short", ErrMalformed)
	case strings.Contains(err.Error(), "overflow"):
		return 0, fmt.Errorf("%w: length: %v", ErrMalformed, err)
	}
	return 0, fmt.Errorf("reading from the stream: %w", err)
}

// ReadFrame reads one frame body of at most max bytes into buf (grown if
// needed) and returns it. A length over max fails with ErrFrameTooLarge
// before the body is read; a short body is io.ErrUnexpectedEOF.
func ReadFrame(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// writeFrame writes a length prefix, a header and a payload.
func writeFrame(w *bufio.Writer, hdr, payload []byte) error {
	var lb [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lb[:], uint64(len(hdr)+len(payload)))
	if _, err := w.Write(lb[:n]); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// Request is a decoded request.
type Request struct {
	Kind byte
	ID   uint64
	CID  cid.Cid
}

// AppendRequest encodes a request body.
func AppendRequest(b []byte, kind byte, id uint64, c cid.Cid) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, id)
	return append(b, c.Bytes()...)
}

// DecodeRequest parses a request body; the CID must pass the allowlist.
func DecodeRequest(b []byte) (Request, error) {
	if len(b) < 2 || (b[0] != KindGet && b[0] != KindHave && b[0] != KindRecords) {
		return Request{}, fmt.Errorf("%w: not a request", ErrMalformed)
	}
	id, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return Request{}, fmt.Errorf("%w: request id", ErrMalformed)
	}
	r := Request{Kind: b[0], ID: id}
	c, err := content.CastCID(b[1+n:])
	if err != nil {
		return r, err
	}
	r.CID = c
	return r, nil
}

// Response is a decoded response: a block, a have-map, or an error code
// and text.
type Response struct {
	ID      uint64
	Data    []byte   // the block
	Have    *HaveMap // the have-map
	Records [][]byte // the records (envelopes, not yet verified)
	Err     error    // set for an error reply
	Code    Code
	Text    string
}

// appendRecords encodes a records reply body: each envelope with a
// uvarint length prefix.
func appendRecords(b []byte, id uint64, recs [][]byte) []byte {
	b = append(b, kindRecords)
	b = binary.AppendUvarint(b, id)
	for _, r := range recs[:min(len(recs), MaxRecords)] {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}

func decodeRecords(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > content.MaxEnvelope || uint64(len(b)-k) < n || len(out) == MaxRecords {
			return nil, fmt.Errorf("%w: records reply", ErrMalformed)
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out, nil
}

// Have-map reply flags.
const (
	haveComplete = 1 << 0
	haveComing   = 1 << 1
)

// appendHave encodes a have-map reply body.
func appendHave(b []byte, id uint64, hm HaveMap) []byte {
	b = append(b, kindHave)
	b = binary.AppendUvarint(b, id)
	switch {
	case hm.Complete:
		return append(b, haveComplete)
	case len(hm.Coming) > 0 && len(hm.Coming) == len(hm.Bits):
		b = append(b, haveComing)
		b = append(b, hm.Bits...)
		return append(b, hm.Coming...)
	default:
		b = append(b, 0)
		return append(b, hm.Bits...)
	}
}

// appendBlockHeader encodes the header of a block reply.
func appendBlockHeader(b []byte, id uint64) []byte {
	b = append(b, kindBlock)
	return binary.AppendUvarint(b, id)
}

// AppendError encodes an error reply body.
func AppendError(b []byte, id uint64, code Code, text string) []byte {
	if len(text) > MaxErrorText {
		text = text[:MaxErrorText]
	}
	b = append(b, kindError)
	b = binary.AppendUvarint(b, id)
	b = append(b, byte(code))
	return append(b, text...)
}

// DecodeResponse parses a response body.
func DecodeResponse(b []byte) (Response, error) {
	if len(b) < 2 || (b[0] != kindBlock && b[0] != kindError && b[0] != kindHave && b[0] != kindRecords) {
		return Response{}, fmt.Errorf("%w: not a response", ErrMalformed)
	}
	id, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return Response{}, fmt.Errorf("%w: response id", ErrMalformed)
	}
	rest := b[1+n:]
	switch b[0] {
	case kindRecords:
		if len(rest) > MaxRecordsReply {
			return Response{}, fmt.Errorf("%w: records reply", ErrMalformed)
		}
		recs, err := decodeRecords(rest)
		if err != nil {
			return Response{}, err
		}
		return Response{ID: id, Records: recs}, nil
	case kindBlock:
		if len(rest) > content.MaxBlock {
			return Response{}, fmt.Errorf("%w: block of %d bytes", ErrFrameTooLarge, len(rest))
		}
		return Response{ID: id, Data: rest}, nil
	case kindHave:
		if len(rest) < 1 || len(rest) > 1+2*MaxHaveMap {
			return Response{}, fmt.Errorf("%w: have-map", ErrMalformed)
		}
		body := rest[1:]
		switch rest[0] {
		case haveComplete:
			if len(body) != 0 {
				break
			}
			return Response{ID: id, Have: &HaveMap{Complete: true}}, nil
		case haveComing:
			if len(body)%2 != 0 || len(body) == 0 {
				break
			}
			half := len(body) / 2
			return Response{ID: id, Have: &HaveMap{Bits: body[:half], Coming: body[half:]}}, nil
		case 0:
			if len(body) > MaxHaveMap {
				break
			}
			return Response{ID: id, Have: &HaveMap{Bits: body}}, nil
		}
		return Response{}, fmt.Errorf("%w: have-map", ErrMalformed)
	}
	if len(rest) < 1 || len(rest) > 1+MaxErrorText {
		return Response{}, fmt.Errorf("%w: error reply", ErrMalformed)
	}
	code := Code(rest[0])
	text := content.Escape(string(rest[1:]))
	return Response{ID: id, Code: code, Text: text, Err: fmt.Errorf("%w: %s", code.err(), text)}, nil
}

// blockBufs recycles block buffers of MaxBlock bytes between the client's
// reader and the callers of Get.
var blockBufs = sync.Pool{New: func() any { return make([]byte, content.MaxBlock) }}

// Recycle hands back a block returned by Client.Get once the caller is done
// with it; the caller must not use it afterwards.
func Recycle(b []byte) {
	if cap(b) == content.MaxBlock {
		blockBufs.Put(b[:content.MaxBlock])
	}
}

// byteCounter counts the bytes a uvarint read consumed.
type byteCounter struct {
	r *bufio.Reader
	n int
}

func (b *byteCounter) ReadByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err == nil {
		b.n++
	}
	return c, err
}

// ReadResponse reads one response frame. A block's bytes go into a pooled
// buffer (hand it back with Recycle); the frame's length is checked against
// MaxFrame before anything is read into memory.
func ReadResponse(r *bufio.Reader) (Response, error) {
	n, err := readLength(r)
	if err != nil {
		return Response{}, err
	}
	if n > MaxFrame {
		return Response{}, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, MaxFrame)
	}
	if n < 2 {
		return Response{}, fmt.Errorf("%w: short frame", ErrMalformed)
	}
	kind, err := r.ReadByte()
	if err != nil {
		return Response{}, io.ErrUnexpectedEOF
	}
	bc := &byteCounter{r: r}
	id, err := binary.ReadUvarint(bc)
	if err != nil || uint64(1+bc.n) > n {
		return Response{}, fmt.Errorf("%w: response id", ErrMalformed)
	}
	rest := int(n) - 1 - bc.n
	switch kind {
	case kindBlock:
		if rest > content.MaxBlock {
			return Response{}, fmt.Errorf("%w: block of %d bytes", ErrFrameTooLarge, rest)
		}
		buf := blockBufs.Get().([]byte)[:rest]
		if _, err := io.ReadFull(r, buf); err != nil {
			Recycle(buf)
			return Response{}, io.ErrUnexpectedEOF
		}
		return Response{ID: id, Data: buf}, nil
	case kindError, kindHave, kindRecords:
		if (kind != kindRecords && rest < 1) || (kind == kindError && rest > 1+MaxErrorText) ||
			(kind == kindRecords && rest > MaxRecordsReply) || rest > 1+2*MaxHaveMap {
			return Response{}, fmt.Errorf("%w: reply of %d bytes", ErrMalformed, rest)
		}
		body := make([]byte, 0, 1+10+rest)
		body = append(body, kind)
		body = binary.AppendUvarint(body, id)
		body = body[:len(body)+rest]
		if _, err := io.ReadFull(r, body[len(body)-rest:]); err != nil {
			return Response{}, io.ErrUnexpectedEOF
		}
		return DecodeResponse(body)
	}
	return Response{}, fmt.Errorf("%w: not a response", ErrMalformed)
}
