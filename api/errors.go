package api

import (
	"errors"
	"fmt"
)

// Errors of the API itself.
var (
	// ErrNoDaemon reports that no daemon runs on a home.
	ErrNoDaemon = errors.New("no daemon running")
	// ErrBadRequest reports a request the handler could not decode.
	ErrBadRequest = errors.New("bad request")
	// ErrVerify reports a held root some of whose files no longer verify.
	ErrVerify = errors.New("verification failed")
)

// Code names a sentinel error for the wire.
type Code struct {
	Name string
	Err  error
}

// Codes is the table of sentinels that keep their identity across the
// API. The first whose sentinel an error wraps names it; order the more
// specific first.
type Codes []Code

// base are the API's own codes, known to every table.
var base = Codes{{Name: "bad_request", Err: ErrBadRequest}, {Name: "verify_failed", Err: ErrVerify}}

func (cs Codes) name(err error) string {
	for _, c := range append(cs, base...) {
		if errors.Is(err, c.Err) {
			return c.Name
		}
	}
	return ""
}

func (cs Codes) sentinel(name string) error {
	for _, c := range append(cs, base...) {
		if c.Name == name {
			return c.Err
		}
	}
	return nil
}

// Error is an error returned by a daemon: its message, and the sentinel
// its code names (nil for an error without a code).
type Error struct {
	Code    string
	Message string
	err     error
}

func (e *Error) Error() string { return e.Message }

// Unwrap gives the sentinel, so errors.Is(err, fetch.ErrNoProviders)
// holds for an error that crossed the API.
func (e *Error) Unwrap() error { return e.err }

// HTTPError is a reply of the API that is not a JSON error event: a
// refused token, a non-loopback Host.
type HTTPError struct {
	Status int
	Msg    string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("daemon API: %d %s", e.Status, e.Msg) }
