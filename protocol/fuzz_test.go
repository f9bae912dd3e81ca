package protocol

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/shoal-p2p/shoal/content"
)

func FuzzDecodeRequest(f *testing.F) {
	f.Add(AppendRequest(nil, KindGet, 1, content.SumCID(content.CodecRaw, []byte("x"))))
	f.Add(AppendRequest(nil, KindHave, 1<<40, content.SumCID(content.CodecDagCBOR, []byte("y"))))
	f.Add([]byte{KindGet, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendRequest(nil, req.Kind, req.ID, req.CID), b) {
			// Non-minimal varints may decode; they must still name an
			// allowed CID.
			if content.CheckCID(req.CID) != nil {
				t.Fatal("decoded a disallowed CID")
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(append(appendBlockHeader(nil, 3), "data"...))
	f.Add(AppendError(nil, 4, CodeNotFound, "not found"))
	f.Add(appendHave(nil, 5, HaveMap{Bits: []byte{0xff, 0x01}}))
	f.Add(appendHave(nil, 6, HaveMap{Complete: true}))
	f.Add(appendHave(nil, 7, HaveMap{Bits: []byte{0x0f}, Coming: []byte{0x30}}))
	f.Add(appendRecords(nil, 8, [][]byte{[]byte("a"), []byte("bc")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			return
		}
		if len(r.Data) > content.MaxBlock || len(r.Text) > 4*MaxErrorText+4 {
			t.Fatal("response beyond its caps")
		}
		if len(r.Records) > MaxRecords {
			t.Fatal("too many records")
		}
		if r.Have != nil && (len(r.Have.Bits) > MaxHaveMap || (r.Have.Complete && len(r.Have.Bits) > 0) ||
			(len(r.Have.Coming) > 0 && len(r.Have.Coming) != len(r.Have.Bits))) {
			t.Fatal("have-map beyond its caps")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c'}, uint16(10))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x04}, uint16(100))
	f.Fuzz(func(t *testing.T, b []byte, max uint16) {
		frame, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), nil, int(max))
		if err == nil && len(frame) > int(max) {
			t.Fatal("frame over its cap")
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeFrame(w, appendBlockHeader(nil, 3), []byte("data"))
	writeFrame(w, AppendError(nil, 4, CodeBusy, "busy"), nil)
	w.Flush()
	f.Add(b.Bytes())
	f.Add([]byte{0x05, kindBlock, 0x80, 0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 4 {
			resp, err := ReadResponse(r)
			if err != nil {
				return
			}
			if len(resp.Data) > content.MaxBlock || len(resp.Text) > 4*MaxErrorText+4 {
				t.Fatal("response beyond its caps")
			}
			Recycle(resp.Data)
		}
	})
}
