package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/net/netutil"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/httpx"
)

// Event is one line of a streamed reply: progress, then a result or an
// error.
type Event struct {
	Event    string          `json:"event"` // "progress", "result", "error"
	Progress *Progress       `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	Code     string          `json:"code,omitempty"` // names the sentinel the error wraps
}

// errorReply is the body of a plain (not streamed) error reply.
type errorReply struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// verifyRequest names the root to verify.
type verifyRequest struct {
	Root cid.Cid `json:"root"`
}

// Handler serves svc as the local API. Every request must carry
// "Authorization: Bearer <token>" and a loopback Host; a request from a
// browser (with an Origin header) is refused outright. Errors carry the
// code codes gives them.
func Handler(svc Service, token string, codes Codes) http.Handler {
	h := &handler{svc: svc, codes: codes}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", plain(h, func(ctx context.Context, _ *http.Request) (any, error) { return svc.ID(ctx) }))
	mux.HandleFunc("GET /v1/status", plain(h, func(ctx context.Context, _ *http.Request) (any, error) { return svc.Status(ctx) }))
	mux.HandleFunc("GET /v1/ls", plain(h, func(ctx context.Context, _ *http.Request) (any, error) { return svc.Ls(ctx) }))
	mux.HandleFunc("GET /v1/files", plain(h, func(ctx context.Context, r *http.Request) (any, error) {
		root, err := content.ParseCID(r.URL.Query().Get("root"))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return svc.Files(ctx, root)
	}))
	mux.HandleFunc("POST /v1/add", streamed(h, svc.Add))
	mux.HandleFunc("POST /v1/get", streamed(h, svc.Get))
	mux.HandleFunc("POST /v1/inspect", streamed(h, noProgress(svc.Inspect)))
	mux.HandleFunc("POST /v1/verify", streamed(h, func(ctx context.Context, req verifyRequest, progress func(Progress)) (*VerifyReport, error) {
		return svc.Verify(ctx, req.Root, progress)
	}))
	mux.HandleFunc("POST /v1/publish", streamed(h, noProgress(svc.Publish)))
	mux.HandleFunc("POST /v1/resolve", streamed(h, noProgress(svc.Resolve)))
	mux.HandleFunc("POST /v1/pin", streamed(h, svc.Pin))
	mux.HandleFunc("POST /v1/unpin", streamed(h, noProgress(svc.Unpin)))
	mux.HandleFunc("GET /v1/pins", plain(h, func(ctx context.Context, _ *http.Request) (any, error) { return svc.Pins(ctx) }))
	mux.HandleFunc("POST /v1/scrub", streamed(h, svc.Scrub))
	mux.HandleFunc("POST /v1/gc", streamed(h, noProgress(svc.GC)))
	mux.HandleFunc("POST /v1/follow", streamed(h, noProgress(svc.Follow)))
	mux.HandleFunc("POST /v1/unfollow", streamed(h, noProgress(svc.Unfollow)))
	mux.HandleFunc("GET /v1/follows", plain(h, func(ctx context.Context, _ *http.Request) (any, error) { return svc.Follows(ctx) }))
	return guard(token, mux)
}

// noProgress adapts an operation that reports no progress to streamed.
func noProgress[T, R any](op func(ctx context.Context, req T) (R, error)) func(context.Context, T, func(Progress)) (R, error) {
	return func(ctx context.Context, req T, _ func(Progress)) (R, error) { return op(ctx, req) }
}

type handler struct {
	svc   Service
	codes Codes
}

// plain makes a handler that answers op's result as one JSON object.
func plain(h *handler, op func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := op(r.Context(), r)
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	}
}

// fail answers an error that comes before any reply was sent: as JSON,
// with its code, and a status that says whose fault it is.
func (h *handler) fail(w http.ResponseWriter, err error) {
	code := h.codes.name(err)
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case code == "not_found":
		status = http.StatusNotFound
	case code != "":
		status = http.StatusUnprocessableEntity // understood, refused
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorReply{Error: err.Error(), Code: code})
}

// streamed makes a handler that decodes a JSON request of type T and
// streams op's progress, then its result or error, as NDJSON events. The
// reply's status is sent with its first event: an error before any
// progress (a request refused after decoding, a root nobody holds) is a
// plain JSON error with a 4xx or 5xx status. The operation stops if the
// client goes away.
func streamed[T, R any](h *handler, op func(ctx context.Context, req T, progress func(Progress)) (R, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req T
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		err := dec.Decode(&req)
		if err == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				err = errors.New("text after the request object")
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				err = fmt.Errorf("%w: %w", ErrBadRequest, err)
			}
			h.fail(w, err)
			return
		}
		fl, _ := w.(http.Flusher)
		var mu sync.Mutex
		enc := json.NewEncoder(w)
		started := false
		send := func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				started = true
			}
			_ = enc.Encode(e)
			if fl != nil {
				fl.Flush()
			}
		}
		res, err := op(r.Context(), req, func(p Progress) { send(Event{Event: "progress", Progress: &p}) })
		if err != nil {
			// A result that comes with its error (a failed verify's
			// report) is sent first.
			if b, merr := json.Marshal(res); merr == nil && string(b) != "null" {
				send(Event{Event: "result", Result: b, Error: err.Error(), Code: h.codes.name(err)})
				return
			}
			mu.Lock()
			before := !started
			mu.Unlock()
			if before {
				h.fail(w, err)
				return
			}
			send(Event{Event: "error", Error: err.Error(), Code: h.codes.name(err)})
			return
		}
		b, _ := json.Marshal(res)
		send(Event{Event: "result", Result: b})
	}
}

// guard refuses a request whose Host is not a loopback name or address
// (DNS rebinding: a web page whose name now points at 127.0.0.1), refuses
// browsers, and enforces the token. A refused request's connection is
// closed: a client without the token gets nothing to keep open.
func guard(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(msg string, code int) {
			w.Header().Set("Connection", "close")
			http.Error(w, msg, code)
		}
		if !httpx.LoopbackHost(r.Host) {
			refuse("the local API answers only to a loopback Host (localhost, 127.0.0.1, ::1)", http.StatusMisdirectedRequest)
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			refuse("browser requests are not allowed", http.StatusForbidden)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			refuse("missing or wrong API token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Limits bound the local API's connections (variables so tests can
// shorten them).
var Limits = struct {
	Header time.Duration // to read a request's headers
	Idle   time.Duration // a kept-alive connection waiting for a request
	Conns  int           // connections open at once
}{5 * time.Second, time.Minute, 512}

// Serve serves h on ln until ctx ends, then closes ln. Headers must
// arrive promptly and an idle kept-alive connection is closed, but a
// reply has no time limit: add and get stream progress for as long as
// they run. At most Limits.Conns connections are served at once; more
// wait to be accepted. It returns once the server has shut down.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: Limits.Header,
		IdleTimeout:       Limits.Idle,
		MaxHeaderBytes:    64 << 10,
	}
	shut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shut)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err := srv.Serve(netutil.LimitListener(ln, Limits.Conns))
	if stop() {
		// Serve failed before ctx ended: no shutdown is pending.
		return err
	}
	<-shut
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
