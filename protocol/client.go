package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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

// ErrClosed reports a client whose stream has ended.
var ErrClosed = errors.New("stream closed")

// Client sends pipelined requests on one stream. Safe for concurrent use:
// up to MaxInFlight Get calls proceed at once.
type Client struct {
	s   Stream
	bw  *bufio.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	pending map[uint64]*call
	next    uint64
	err     error

	slots chan struct{}
	done  chan struct{}
}

type call struct {
	max int
	ch  chan Response
}

// NewClient starts a client on s; Close ends it.
func NewClient(s Stream) *Client {
	c := &Client{
		s:       s,
		bw:      bufio.NewWriterSize(s, 4<<10),
		pending: map[uint64]*call{},
		slots:   make(chan struct{}, MaxInFlight),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c
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

func (c *Client) roundTrip(ctx context.Context, kind byte, id cid.Cid, max int) (Response, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	case <-c.done:
		return Response{}, c.failure()
	}
	cl := &call{max: max, ch: make(chan Response, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		<-c.slots
		return Response{}, c.err
	}
	rid := c.next
	c.next++
	c.pending[rid] = cl
	c.mu.Unlock()

	c.wmu.Lock()
	_ = c.s.SetWriteDeadline(time.Now().Add(30 * time.Second))
	err := writeFrame(c.bw, AppendRequest(nil, kind, rid, id), nil)
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrClosed, err))
	}
	select {
	case r := <-cl.ch:
		if r.Err != nil {
			return Response{}, r.Err
		}
		return r, nil
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

func (c *Client) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the client with err: every pending call gets err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	_ = c.s.Reset()
	for _, cl := range pending {
		cl.ch <- Response{Err: err}
	}
	close(c.done)
}

func (c *Client) readLoop() {
	br := bufio.NewReaderSize(c.s, 64<<10)
	for {
		r, err := ReadResponse(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			c.fail(err)
			return
		}
		c.mu.Lock()
		cl := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if cl == nil {
			Recycle(r.Data)
			c.fail(fmt.Errorf("%w: reply to unknown request %d", ErrMalformed, r.ID))
			return
		}
		if r.Err == nil && len(r.Data) > cl.max {
			Recycle(r.Data)
			cl.ch <- Response{Err: fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(r.Data), cl.max)}
			<-c.slots
			c.fail(ErrTooLong)
			return
		}
		cl.ch <- r
		<-c.slots
	}
}

// Close ends the stream.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Err returns why the client ended, or nil while it runs.
func (c *Client) Err() error { return c.failure() }
