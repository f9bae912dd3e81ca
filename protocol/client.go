package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
)

// Stream is the part of a libp2p stream the client uses.
type Stream interface {
	io.ReadWriter
	Close() error
	Reset() error
	SetWriteDeadline(time.Time) error
}

// errPeerClosed is the peer ending the stream cleanly (a server closes a
// stream idle for a while): a client that can reopen one does.
var errPeerClosed = fmt.Errorf("%w by the peer", ErrClosed)

// minProgress is the least a stream must deliver per Timeout while
// requests are outstanding: a peer sending a byte a second is stalled, a
// slow link is not.
const minProgress = 32 << 10

// Client sends pipelined requests on a stream. Safe for concurrent use:
// up to MaxInFlight Get calls proceed at once.
//
// Timeout, if set (before the first request), fails the stream when
// requests are outstanding and it delivers less than 32 KiB in a
// Timeout: a request's time runs from when it was sent and while the
// replies ahead of it make progress, not while it waits for a slot or
// behind other replies on a slow link.
type Client struct {
	Timeout time.Duration
	// FirstByte, if set (before the first request) and shorter than
	// Timeout, fails a stream that has delivered no block yet and sends
	// nothing at all within FirstByte of a request: a peer that claims a
	// model and stalls loses its work to others in seconds.
	FirstByte time.Duration

	reopen func(context.Context) (Stream, error) // nil: one stream only

	mu     sync.Mutex
	cur    *session
	closed bool
}

// session is one stream of a client.
type session struct {
	s      Stream
	bw     *bufio.Writer
	wmu    sync.Mutex
	recv   atomic.Int64 // bytes read
	blocks atomic.Int64 // blocks delivered
	slots  chan struct{}

	mu      sync.Mutex
	pending map[uint64]*call
	next    uint64
	err     error
	done    chan struct{}
}

type call struct {
	max int
	ch  chan Response
}

// NewClient starts a client on s; Close ends it. When s ends, so does the
// client.
func NewClient(s Stream) *Client {
	return &Client{cur: newSession(s)}
}

// NewReopeningClient starts a client on s that, when the peer closes the
// stream (as a server does with an idle one), opens another with reopen
// at the next request. A request under way when the peer closed is sent
// again once on the new stream.
func NewReopeningClient(s Stream, reopen func(context.Context) (Stream, error)) *Client {
	return &Client{cur: newSession(s), reopen: reopen}
}

func newSession(s Stream) *session {
	ss := &session{
		s:       s,
		bw:      bufio.NewWriterSize(s, 4<<10),
		pending: map[uint64]*call{},
		slots:   make(chan struct{}, MaxInFlight),
		done:    make(chan struct{}),
	}
	go ss.readLoop()
	return ss
}

// Get asks for the block c and returns it; it is not longer than max bytes
// (a longer reply fails with ErrTooLong and ends the stream). The caller
// verifies the bytes against c, and may hand them back with Recycle.
func (c *Client) Get(ctx context.Context, id cid.Cid, max int) ([]byte, error) {
	r, err := c.roundTrip(ctx, KindGet, id, max)
	if err != nil {
		return nil, err
	}
	if r.Data == nil {
		return nil, fmt.Errorf("%w: expected a block", ErrMalformed)
	}
	return r.Data, nil
}

// Have asks which chunks of root the peer holds.
func (c *Client) Have(ctx context.Context, root cid.Cid) (HaveMap, error) {
	r, err := c.roundTrip(ctx, KindHave, root, 0)
	if err != nil {
		return HaveMap{}, err
	}
	if r.Have == nil {
		Recycle(r.Data)
		return HaveMap{}, fmt.Errorf("%w: expected a have-map", ErrMalformed)
	}
	return *r.Have, nil
}

// Records asks for the signed publisher records the peer holds for root;
// the caller verifies them.
func (c *Client) Records(ctx context.Context, root cid.Cid) ([][]byte, error) {
	r, err := c.roundTrip(ctx, KindRecords, root, 0)
	if err != nil {
		return nil, err
	}
	if r.Have != nil || r.Data != nil {
		Recycle(r.Data)
		return nil, fmt.Errorf("%w: expected records", ErrMalformed)
	}
	return r.Records, nil
}

// session returns the stream to send on: the current one, or a new one
// when the peer closed it and the client can reopen.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	err := c.cur.failure()
	if err == nil {
		return c.cur, nil
	}
	if c.reopen == nil || !errors.Is(err, errPeerClosed) {
		return nil, err
	}
	s, err := c.reopen(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w; reopening: %w", ErrClosed, err)
	}
	c.cur = newSession(s)
	return c.cur, nil
}

func (c *Client) roundTrip(ctx context.Context, kind byte, id cid.Cid, max int) (Response, error) {
	for try := 0; ; try++ {
		ss, err := c.session(ctx)
		if err != nil {
			return Response{}, err
		}
		r, err := ss.roundTrip(ctx, c.Timeout, c.FirstByte, kind, id, max)
		if try == 0 && c.reopen != nil && errors.Is(err, errPeerClosed) && ctx.Err() == nil {
			continue
		}
		return r, err
	}
}

func (ss *session) roundTrip(ctx context.Context, timeout, firstByte time.Duration, kind byte, id cid.Cid, max int) (Response, error) {
	select {
	case ss.slots <- struct{}{}:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	case <-ss.done:
		return Response{}, ss.failure()
	}
	cl := &call{max: max, ch: make(chan Response, 1)}
	ss.mu.Lock()
	if ss.err != nil {
		ss.mu.Unlock()
		<-ss.slots
		return Response{}, ss.err
	}
	rid := ss.next
	ss.next++
	ss.pending[rid] = cl
	ss.mu.Unlock()

	ss.wmu.Lock()
	_ = ss.s.SetWriteDeadline(time.Now().Add(30 * time.Second))
	err := writeFrame(ss.bw, AppendRequest(nil, kind, rid, id), nil)
	if err == nil {
		err = ss.bw.Flush()
	}
	ss.wmu.Unlock()
	if err != nil {
		ss.fail(fmt.Errorf("%w: %w", ErrClosed, err))
	}
	// The request is out: its time starts now, and goes on only while
	// the stream delivers nothing.
	var tick <-chan time.Time
	if timeout > 0 {
		wait := timeout
		first := firstByte > 0 && firstByte < timeout && ss.blocks.Load() == 0
		if first {
			wait = firstByte
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		tick = t.C
		mark := ss.recv.Load()
		for {
			select {
			case r := <-cl.ch:
				return r, r.Err
			case <-ctx.Done():
				return Response{}, ctx.Err()
			case <-tick:
			}
			got := ss.recv.Load()
			if first && got == mark && ss.blocks.Load() == 0 {
				err := fmt.Errorf("%w: nothing sent within %s of a request", ErrStalled, firstByte)
				ss.fail(err)
				return Response{}, err
			}
			first = false
			if got-mark < minProgress && wait == timeout {
				err := fmt.Errorf("%w: %d bytes in %s with requests outstanding", ErrStalled, got-mark, timeout)
				ss.fail(err)
				return Response{}, err
			}
			mark, wait = got, timeout
			t.Reset(timeout)
		}
	}
	select {
	case r := <-cl.ch:
		return r, r.Err
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

func (ss *session) failure() error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.err
}

// fail ends the session with err: every pending call gets err.
func (ss *session) fail(err error) {
	ss.mu.Lock()
	if ss.err != nil {
		ss.mu.Unlock()
		return
	}
	ss.err = err
	pending := ss.pending
	ss.pending = map[uint64]*call{}
	ss.mu.Unlock()
	if errors.Is(err, errPeerClosed) {
		_ = ss.s.Close()
	} else {
		_ = ss.s.Reset()
	}
	for _, cl := range pending {
		cl.ch <- Response{Err: err}
	}
	close(ss.done)
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (ss *session) readLoop() {
	br := bufio.NewReaderSize(countReader{r: ss.s, n: &ss.recv}, 64<<10)
	for {
		r, err := ReadResponse(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errPeerClosed
			}
			ss.fail(err)
			return
		}
		ss.mu.Lock()
		cl := ss.pending[r.ID]
		delete(ss.pending, r.ID)
		ss.mu.Unlock()
		if cl == nil {
			Recycle(r.Data)
			ss.fail(fmt.Errorf("%w: reply to unknown request %d", ErrMalformed, r.ID))
			return
		}
		if r.Err == nil && len(r.Data) > cl.max {
			Recycle(r.Data)
			cl.ch <- Response{Err: fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(r.Data), cl.max)}
			<-ss.slots
			ss.fail(ErrTooLong)
			return
		}
		if r.Err == nil && r.Data != nil {
			ss.blocks.Add(1)
		}
		cl.ch <- r
		<-ss.slots
	}
}

// Close ends the stream.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cur := c.cur
	c.mu.Unlock()
	cur.fail(ErrClosed)
	return nil
}

// Err returns why the client ended, or nil while it runs (or while it can
// open a new stream).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	err := c.cur.failure()
	if c.reopen != nil && errors.Is(err, errPeerClosed) {
		return nil
	}
	return err
}
