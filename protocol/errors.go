package protocol

import "errors"

// Errors of the exchange: the peer's error replies, and what a client
// or the codec refuses.
var (
	// ErrClosed reports a client whose stream has ended.
	ErrClosed = errors.New("stream closed")
	// ErrStalled reports a peer whose replies stopped coming: requests
	// were outstanding and almost nothing arrived for a Timeout.
	ErrStalled = errors.New("peer stalled")
	// ErrFrameTooLarge reports a length prefix over the limit; the stream is
	// reset before anything is allocated.
	ErrFrameTooLarge = errors.New("frame exceeds size limit")
	// ErrMalformed reports a frame that does not parse.
	ErrMalformed = errors.New("malformed message")
	// ErrNotFound is the peer's "not found" reply.
	ErrNotFound = errors.New("peer does not have block")
	// ErrBusy is the peer's "busy" reply.
	ErrBusy = errors.New("peer busy")
	// ErrUnavailable is the peer's "file changed on disk" reply.
	ErrUnavailable = errors.New("peer cannot serve block")
	// ErrRefused covers the other error replies.
	ErrRefused = errors.New("peer refused request")
	// ErrTooLong reports a block longer than the caller allowed.
	ErrTooLong = errors.New("block longer than declared")
)
