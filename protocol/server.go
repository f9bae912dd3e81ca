package protocol

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
)

// Store is what a server serves from.
type Store interface {
	// Block returns a manifest block.
	Block(c cid.Cid) ([]byte, error)
	// ReadChunk reads a chunk into buf (MaxBlock bytes) and returns it.
	ReadChunk(c cid.Cid, buf []byte) ([]byte, error)
	// Have says which chunks of a root are held (content.ErrNotFound when
	// none is).
	Have(root cid.Cid) (HaveMap, error)
	// Records returns the signed publisher records (envelopes) naming root.
	Records(root cid.Cid) [][]byte
}

// Server answers requests on inbound streams.
type Server struct {
	Store Store
	// IdleTimeout closes a stream with no request for this long.
	IdleTimeout time.Duration
	// WriteTimeout resets a stream whose reply cannot be written in time.
	WriteTimeout time.Duration
	// Asked, if set, is told of every have-map request: a peer fetching
	// that root.
	Asked func(p peer.ID, root cid.Cid)
	Log   *slog.Logger

	warns warnLimit
}

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, content.MaxBlock); return &b }}

// Handle serves one stream until the peer closes it, goes idle, or breaks
// the protocol; it always ends the stream with Close or Reset.
func (s *Server) Handle(st network.Stream) {
	idle, wt := s.IdleTimeout, s.WriteTimeout
	if idle == 0 {
		idle = time.Minute
	}
	if wt == 0 {
		wt = 30 * time.Second
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	br := bufio.NewReaderSize(st, 4<<10)
	bw := bufio.NewWriterSize(st, 64<<10)
	bufp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bufp)
	var reqBuf [MaxRequest]byte
	var hdr []byte
	for {
		_ = st.SetReadDeadline(time.Now().Add(idle))
		frame, err := ReadFrame(br, reqBuf[:0], MaxRequest)
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = st.Close()
			} else {
				log.Debug("xfer: closing stream", "peer", st.Conn().RemotePeer(), "err", err)
				_ = st.Reset()
			}
			return
		}
		req, err := DecodeRequest(frame)
		hdr = hdr[:0]
		var data []byte
		switch {
		case errors.Is(err, ErrMalformed):
			log.Debug("xfer: malformed request", "peer", st.Conn().RemotePeer(), "err", err)
			_ = st.Reset()
			return
		case err != nil:
			hdr = AppendError(hdr, req.ID, CodeBadRequest, err.Error())
		default:
			var hm HaveMap
			var recs [][]byte
			switch {
			case req.Kind == KindRecords:
				recs = s.Store.Records(req.CID)
			case req.Kind == KindHave:
				if s.Asked != nil {
					s.Asked(st.Conn().RemotePeer(), req.CID)
				}
				hm, err = s.Store.Have(req.CID)
				if len(hm.Bits) > MaxHaveMap || len(hm.Coming) > MaxHaveMap {
					err = ErrTooLong
				}
			case req.CID.Type() == content.CodecDagCBOR:
				data, err = s.Store.Block(req.CID)
			default:
				data, err = s.Store.ReadChunk(req.CID, *bufp)
			}
			switch {
			case err == nil && req.Kind == KindRecords:
				hdr = appendRecords(hdr, req.ID, recs)
			case err == nil && req.Kind == KindHave:
				hdr = appendHave(hdr, req.ID, hm)
			case err == nil:
				hdr = appendBlockHeader(hdr, req.ID)
			case errors.Is(err, ErrTooLong):
				data = nil
				hdr = AppendError(hdr, req.ID, CodeTooLarge, "have-map too large")
			case errors.Is(err, content.ErrNotFound):
				data = nil
				hdr = AppendError(hdr, req.ID, CodeNotFound, "not found")
			default:
				s.warns.warn(log, st.Conn().RemotePeer(), "xfer: cannot serve block", "cid", req.CID, "err", err)
				data = nil
				hdr = AppendError(hdr, req.ID, CodeUnavailable, "unavailable")
			}
		}
		_ = st.SetWriteDeadline(time.Now().Add(wt))
		werr := writeFrame(bw, hdr, data)
		if werr == nil && br.Buffered() == 0 {
			werr = bw.Flush()
		}
		if werr != nil {
			log.Debug("xfer: write failed", "peer", st.Conn().RemotePeer(), "err", werr)
			_ = st.Reset()
			return
		}
	}
}
