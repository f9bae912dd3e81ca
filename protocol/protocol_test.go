package protocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-p2p/shoal/content"
)

type mapStore map[cid.Cid][]byte

func (m mapStore) Block(c cid.Cid) ([]byte, error) {
	if b, ok := m[c]; ok {
		return b, nil
	}
	return nil, content.ErrNotFound
}

func (m mapStore) ReadChunk(c cid.Cid, buf []byte) ([]byte, error) {
	b, ok := m[c]
	if !ok {
		return nil, content.ErrNotFound
	}
	return buf[:copy(buf, b)], nil
}

func (m mapStore) Have(root cid.Cid) (HaveMap, error) {
	if _, ok := m[root]; !ok {
		return HaveMap{}, content.ErrNotFound
	}
	if root.Type() == content.CodecDagCBOR {
		return HaveMap{Bits: []byte{0b101}, Coming: []byte{0b1000}}, nil
	}
	return HaveMap{Complete: true}, nil
}

func (m mapStore) Records(root cid.Cid) [][]byte {
	if _, ok := m[root]; ok {
		return [][]byte{[]byte("envelope one"), []byte("two")}
	}
	return nil
}

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// pair connects two hosts; the server side runs handler for ID.
func pair(t *testing.T, handler network.StreamHandler) network.Stream {
	t.Helper()
	a, b := newHost(t), newHost(t)
	b.SetStreamHandler(ID, handler)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExchange(t *testing.T) {
	store := mapStore{}
	var raws []cid.Cid
	for i := range 100 {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i*5000)
		c := content.SumCID(content.CodecRaw, data)
		store[c] = data
		raws = append(raws, c)
	}
	blk := []byte{0xa0}
	bc := content.SumCID(content.CodecDagCBOR, blk)
	store[bc] = blk
	srv := &Server{Store: store}
	cl := NewClient(pair(t, srv.Handle))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// 100 requests in flight from many goroutines on one stream.
	var wg sync.WaitGroup
	errs := make(chan error, len(raws))
	for _, c := range raws {
		wg.Go(func() {
			data, err := cl.Get(ctx, c, content.MaxBlock)
			if err == nil {
				err = content.VerifyBlock(c, data)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if data, err := cl.Get(ctx, bc, content.MaxBlock); err != nil || !bytes.Equal(data, blk) {
		t.Fatalf("manifest block: %v", err)
	}
	if hm, err := cl.Have(ctx, bc); err != nil || hm.Complete || !hm.Has(0) || hm.Has(1) || !hm.Has(2) || hm.Has(3) || hm.Has(1000) || !hm.Soon(3) || hm.Soon(2) {
		t.Fatalf("partial have-map: %+v %v", hm, err)
	}
	if hm, err := cl.Have(ctx, raws[0]); err != nil || !hm.Complete || !hm.Has(12345) {
		t.Fatalf("complete have-map: %+v %v", hm, err)
	}
	if recs, err := cl.Records(ctx, bc); err != nil || len(recs) != 2 || string(recs[0]) != "envelope one" || string(recs[1]) != "two" {
		t.Fatalf("records: %q %v", recs, err)
	}
	missing := content.SumCID(content.CodecRaw, []byte("nobody has this"))
	if recs, err := cl.Records(ctx, missing); err != nil || len(recs) != 0 {
		t.Fatalf("records of an unknown root: %q %v", recs, err)
	}
	if _, err := cl.Have(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("have-map of an unknown root: err = %v", err)
	}
	if _, err := cl.Get(ctx, missing, content.MaxBlock); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing block: err = %v", err)
	}
	// A hash off the allowlist gets an explicit refusal, and the stream
	// stays usable.
	b3, _ := mh.Sum([]byte("x"), mh.BLAKE3, 32)
	if _, err := cl.Get(ctx, cid.NewCidV1(cid.Raw, b3), content.MaxBlock); !errors.Is(err, ErrRefused) {
		t.Fatalf("blake3 CID: err = %v", err)
	}
	if _, err := cl.Get(ctx, raws[0], content.MaxBlock); err != nil {
		t.Fatalf("stream unusable after a refusal: %v", err)
	}
}

// hostile returns a handler that reads one request and writes raw bytes.
func hostile(reply func(w *bufio.Writer, id uint64)) network.StreamHandler {
	return func(s network.Stream) {
		br := bufio.NewReader(s)
		frame, err := ReadFrame(br, nil, MaxRequest)
		if err != nil {
			s.Reset()
			return
		}
		req, _ := DecodeRequest(frame)
		bw := bufio.NewWriter(s)
		reply(bw, req.ID)
		bw.Flush()
		time.Sleep(200 * time.Millisecond)
		s.Close()
	}
}

// Threat 5: a 1 GiB length prefix resets the stream before anything is
// allocated.
func TestHugeLengthPrefixRefused(t *testing.T) {
	s := pair(t, hostile(func(w *bufio.Writer, id uint64) {
		var lb [10]byte
		w.Write(lb[:binary.PutUvarint(lb[:], 1<<30)])
		w.Write(make([]byte, 4096))
	}))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cl := NewClient(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cl.Get(ctx, content.SumCID(content.CodecRaw, []byte("x")), content.MaxBlock)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 10<<20 {
		t.Fatalf("allocated %d bytes for a refused frame", grew)
	}
}

// Threat 4: a peer sending more than the declared length is cut off.
func TestLongerThanDeclaredRefused(t *testing.T) {
	s := pair(t, hostile(func(w *bufio.Writer, id uint64) {
		writeFrame(w, appendBlockHeader(nil, id), make([]byte, 5000))
	}))
	cl := NewClient(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Get(ctx, content.SumCID(content.CodecRaw, []byte("x")), 100); !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
	if cl.Err() == nil {
		t.Fatal("stream kept after an overlong block")
	}
}

// Trailing bytes past a frame's declared length are not taken as data:
// they fail to parse as the next frame and end the stream.
func TestBytesPastFrameRefused(t *testing.T) {
	s := pair(t, hostile(func(w *bufio.Writer, id uint64) {
		writeFrame(w, appendBlockHeader(nil, id), []byte("abc"))
		w.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	}))
	cl := NewClient(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, err := cl.Get(ctx, content.SumCID(content.CodecRaw, []byte("x")), 100)
	if err != nil || string(data) != "abc" {
		t.Fatalf("first frame: %q %v", data, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cl.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(cl.Err(), ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", cl.Err())
	}
}

// A client sending an oversized request frame gets its stream reset.
func TestServerRefusesOversizedRequest(t *testing.T) {
	srv := &Server{Store: mapStore{}}
	s := pair(t, srv.Handle)
	var lb [10]byte
	s.Write(lb[:binary.PutUvarint(lb[:], 1<<30)])
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(make([]byte, 10)); err == nil {
		t.Fatal("server answered an oversized request")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	c := content.SumCID(content.CodecRaw, []byte("x"))
	req, err := DecodeRequest(AppendRequest(nil, KindGet, 77, c))
	if err != nil || req.ID != 77 || req.CID != c {
		t.Fatalf("request: %+v %v", req, err)
	}
	r, err := DecodeResponse(AppendError(nil, 9, CodeBusy, "slow \x1b[2J down"))
	if err != nil || r.ID != 9 || !errors.Is(r.Err, ErrBusy) || bytes.ContainsRune([]byte(r.Text), 0x1b) {
		t.Fatalf("error reply: %+v %v", r, err)
	}
}
