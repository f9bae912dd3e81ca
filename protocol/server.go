package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
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
	// Blocks, if set, counts the blocks served.
	Blocks *atomic.Int64
	Log    *slog.Logger

	warns warnLimit
}

// servedLog counts what one stream served.
type servedLog struct {
	start  time.Time
	root   cid.Cid // the root a have-map was asked for, if any
	blocks int
	bytes  int64
}

func (l *servedLog) log(log *slog.Logger, p peer.ID) {
	if l.blocks == 0 {
		return
	}
	args := []any{"peer", p, "blocks", l.blocks, "bytes", l.bytes, "took", time.Since(l.start).Round(time.Millisecond)}
	if l.root.Defined() {
		args = append(args, "root", l.root)
	}
	log.Info("served", args...)
}

// ServiceName is the resource-manager service of the exchange: a
// server's streams account their buffers to it.
const ServiceName = "shoal.xfer"

// DefaultIdleTimeout is how long a server keeps a stream with no request
// outstanding. A fetcher keeps requests flowing; one that pauses opens a
// new stream, which is cheap, while an idle stream held by a peer costs a
// slot of the node's stream budget.
const DefaultIdleTimeout = 10 * time.Second

// Buffer sizes. A stream holds only its read buffer while idle; the chunk
// buffer and the write buffer are taken from pools while requests are
// being served and handed back when none is left.
const (
	readBufSize  = 4 << 10
	writeBufSize = 64 << 10
	serveMem     = content.MaxBlock + writeBufSize
)

var (
	chunkBufs  = sync.Pool{New: func() any { b := make([]byte, content.MaxBlock); return &b }}
	writerBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
)

// serving is what a stream holds while it answers requests.
type serving struct {
	st    network.Stream
	chunk *[]byte
	bw    *bufio.Writer
}

// acquire takes the buffers, reserving their memory in the stream's scope;
// it fails when the resource manager refuses.
func (v *serving) acquire() error {
	if v.bw != nil {
		return nil
	}
	if err := v.st.Scope().ReserveMemory(serveMem, network.ReservationPriorityMedium); err != nil {
		return err
	}
	v.chunk = chunkBufs.Get().(*[]byte)
	v.bw = writerBufs.Get().(*bufio.Writer)
	v.bw.Reset(v.st)
	return nil
}

// release hands the buffers back (the write buffer must be flushed).
func (v *serving) release() {
	if v.bw == nil {
		return
	}
	v.bw.Reset(nil)
	writerBufs.Put(v.bw)
	chunkBufs.Put(v.chunk)
	v.bw, v.chunk = nil, nil
	v.st.Scope().ReleaseMemory(serveMem)
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// Handle serves one stream until the peer closes it, goes idle, or breaks
// the protocol; it always ends the stream with Close or Reset.
func (s *Server) Handle(st network.Stream) {
	idle, wt := s.IdleTimeout, s.WriteTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	if wt == 0 {
		wt = 30 * time.Second
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	remote := st.Conn().RemotePeer()
	if err := st.Scope().SetService(ServiceName); err != nil {
		log.Debug("xfer: stream refused", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(readBufSize, network.ReservationPriorityAlways); err != nil {
		log.Debug("xfer: stream refused", "peer", remote, "err", err)
		_ = st.Reset()
		return
	}
	defer st.Scope().ReleaseMemory(readBufSize)
	br := bufio.NewReaderSize(st, readBufSize)
	v := &serving{st: st}
	defer v.release()
	// One line per stream that carried chunks: what an operator sees of
	// the fetches this node serves (a fetcher keeps one stream per peer).
	var served servedLog
	served.start = time.Now()
	defer served.log(log, remote)
	var reqBuf [MaxRequest]byte
	var hdr []byte
	for {
		if br.Buffered() == 0 {
			// Nothing more asked yet, and every reply flushed: hold no
			// buffer while waiting.
			v.release()
		}
		_ = st.SetReadDeadline(time.Now().Add(idle))
		frame, err := ReadFrame(br, reqBuf[:0], MaxRequest)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				_ = st.Close()
			case isTimeout(err) && br.Buffered() == 0:
				log.Debug("xfer: closing idle stream", "peer", remote)
				_ = st.Close()
			default:
				log.Debug("xfer: closing stream", "peer", remote, "err", err)
				_ = st.Reset()
			}
			return
		}
		req, err := DecodeRequest(frame)
		if errors.Is(err, ErrMalformed) {
			log.Debug("xfer: malformed request", "peer", remote, "err", err)
			_ = st.Reset()
			return
		}
		hdr = hdr[:0]
		var data []byte
		if rerr := v.acquire(); rerr != nil {
			// Out of memory for this protocol: say so in a small frame
			// written straight to the stream, and let the peer ask
			// elsewhere.
			log.Debug("xfer: busy", "peer", remote, "err", rerr)
			hdr = AppendError(hdr, req.ID, CodeBusy, "busy")
			frame := binary.AppendUvarint(make([]byte, 0, len(hdr)+binary.MaxVarintLen64), uint64(len(hdr)))
			_ = st.SetWriteDeadline(time.Now().Add(wt))
			if _, werr := st.Write(append(frame, hdr...)); werr != nil {
				_ = st.Reset()
				return
			}
			continue
		}
		switch {
		case err != nil:
			hdr = AppendError(hdr, req.ID, CodeBadRequest, err.Error())
		default:
			var hm HaveMap
			var recs [][]byte
			switch {
			case req.Kind == KindRecords:
				recs = s.Store.Records(req.CID)
			case req.Kind == KindHave:
				served.root = req.CID
				if s.Asked != nil {
					s.Asked(remote, req.CID)
				}
				hm, err = s.Store.Have(req.CID)
				if len(hm.Bits) > MaxHaveMap || len(hm.Coming) > MaxHaveMap {
					err = ErrTooLong
				}
			case req.CID.Type() == content.CodecDagCBOR:
				data, err = s.Store.Block(req.CID)
			default:
				data, err = s.Store.ReadChunk(req.CID, *v.chunk)
			}
			switch {
			case err == nil && req.Kind == KindRecords:
				hdr = appendRecords(hdr, req.ID, recs)
			case err == nil && req.Kind == KindHave:
				hdr = appendHave(hdr, req.ID, hm)
			case err == nil:
				hdr = appendBlockHeader(hdr, req.ID)
				served.blocks++
				served.bytes += int64(len(data))
				if s.Blocks != nil {
					s.Blocks.Add(1)
				}
			case errors.Is(err, ErrTooLong):
				data = nil
				hdr = AppendError(hdr, req.ID, CodeTooLarge, "have-map too large")
			case errors.Is(err, content.ErrNotFound):
				data = nil
				hdr = AppendError(hdr, req.ID, CodeNotFound, "not found")
			default:
				s.warns.warn(log, remote, "xfer: cannot serve block", "cid", req.CID, "err", err)
				data = nil
				hdr = AppendError(hdr, req.ID, CodeUnavailable, "unavailable")
			}
		}
		_ = st.SetWriteDeadline(time.Now().Add(wt))
		werr := writeFrame(v.bw, hdr, data)
		if werr == nil && br.Buffered() == 0 {
			werr = v.bw.Flush()
		}
		if werr != nil {
			log.Debug("xfer: write failed", "peer", remote, "err", werr)
			_ = st.Reset()
			return
		}
	}
}
