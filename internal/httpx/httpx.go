// Package httpx holds the rules every HTTP server of a node shares: the
// local API, the Hugging Face endpoint, the gateway.
package httpx

import (
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/content"
)

// LoopbackHost reports whether a Host header names loopback: "localhost",
// an address in 127.0.0.0/8, or ::1, with or without a port.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OnLoopback reports whether the request came in on a loopback address.
// A connection whose local address is unknown or not TCP counts as
// loopback: the Host rule then applies, which is the safe side.
func OnLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return true
	}
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return true
	}
	return tcp.IP.IsLoopback()
}

// LoopbackOnly refuses (421, connection closed) a request that came in on
// loopback but names another Host: a web page whose name was rebound to
// 127.0.0.1 (DNS rebinding) cannot read from the server. what names the
// server in the refusal.
func LoopbackOnly(what string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if OnLoopback(r) && !LoopbackHost(r.Host) {
			w.Header().Set("Connection", "close")
			http.Error(w, "on loopback "+what+" answers only to a loopback Host (localhost, 127.0.0.1, ::1)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FromBrowser reports a request a web page made from another site: it
// names an Origin that is not loopback, or the browser says it is cross-
// or same-site. A page could otherwise have the node fetch and pin any
// model with an <img> tag (the Host rule does not see it: the page asks
// 127.0.0.1 by name). Clients that are not browsers send neither header.
func FromBrowser(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		host := strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://")
		if !LoopbackHost(host) {
			return true
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// Guard applies the rules of a node's public-content servers (the
// Hugging Face endpoint, the gateway): on loopback only a loopback Host
// (DNS rebinding), and no request a web page of another site made. A
// refused request's connection is closed. what names the server.
func Guard(what string, next http.Handler) http.Handler {
	return LoopbackOnly(what, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromBrowser(r) {
			w.Header().Set("Connection", "close")
			http.Error(w, what+" does not answer web pages of other sites", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// OneRange drops a Range header asking for several ranges: the whole
// file is served instead (each range would read and verify its chunks
// again; a request of thousands of 1-byte ranges is a cheap way to burn
// a core).
func OneRange(r *http.Request) {
	rg := r.Header.Get("Range")
	switch {
	case strings.Contains(rg, ","):
		r.Header.Del("Range")
	case strings.ReplaceAll(rg, " ", "") == "bytes=-0":
		// The last 0 bytes: unsatisfiable (RFC 9110), which net/http
		// would answer with a 206 of an impossible range. A start past
		// any end gets its 416.
		r.Header.Set("Range", "bytes=9223372036854775807-")
	}
}

// Slots bounds the file bodies a server streams at once; each holds a
// read window and a connection.
type Slots chan struct{}

// Take takes a slot, or answers 503 (with Retry-After) and reports false
// when all are taken. Give it back with Release.
func (s Slots) Take(w http.ResponseWriter) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy: too many downloads at once; try again", http.StatusServiceUnavailable)
		return false
	}
}

// Release gives a slot back.
func (s Slots) Release() { <-s }

// ServeFile streams a file of size bytes that read serves, each chunk
// verified: a slot is taken (503 when none is free), a request for
// several ranges gets the whole file (OneRange), http.ServeContent does
// Range, HEAD, 416 and If-None-Match, the 200 or 206 waits for the first
// byte of the body (HeldWriter), and a client that stops reading for
// stall is cut off. A read that failed before the first byte is returned
// as before, with no status sent: the caller clears the headers it set
// and answers the error. One that failed later is returned as after: the
// reply ended short of its Content-Length, which the client sees.
func (s Slots) ServeFile(w http.ResponseWriter, r *http.Request, size int64, read content.ReadRange, stall time.Duration) (before, after error) {
	if !s.Take(w) {
		return nil, nil
	}
	defer s.Release()
	OneRange(r)
	var readErr error
	rd := content.NewFileReader(size, func(off, n int64, dst io.Writer) error {
		err := read(off, n, dst)
		if err != nil && readErr == nil {
			readErr = err
		}
		return err
	})
	hw := &HeldWriter{ResponseWriter: w, Stall: stall}
	http.ServeContent(hw, r, "", time.Time{}, rd)
	if hw.Held() {
		if readErr != nil {
			return readErr, nil
		}
		hw.Send()
	}
	return nil, readErr
}

// HeldWriter holds back a 200 or 206 status until the first byte of the
// body is written (or Send is called), so that a body whose first read
// fails can still be answered with an error status; other statuses go
// out at once. With Stall set, each write must complete within it: a
// client that stops reading is cut off rather than holding its buffers.
type HeldWriter struct {
	http.ResponseWriter
	Stall time.Duration
	code  int  // status held back; 0 for none
	sent  bool // status written to the ResponseWriter
}

// Unwrap gives http.ResponseController the connection.
func (hw *HeldWriter) Unwrap() http.ResponseWriter { return hw.ResponseWriter }

// WriteHeader holds a 200 or 206, and writes any other status at once.
func (hw *HeldWriter) WriteHeader(code int) {
	if hw.sent || hw.code != 0 {
		return
	}
	if code == http.StatusOK || code == http.StatusPartialContent {
		hw.code = code
		return
	}
	hw.sent = true
	hw.ResponseWriter.WriteHeader(code)
}

// Write sends the held status, then p, within Stall.
func (hw *HeldWriter) Write(p []byte) (int, error) {
	hw.Send()
	if hw.Stall > 0 {
		_ = http.NewResponseController(hw.ResponseWriter).SetWriteDeadline(time.Now().Add(hw.Stall))
	}
	return hw.ResponseWriter.Write(p)
}

// Held reports whether no status has been written yet.
func (hw *HeldWriter) Held() bool { return !hw.sent }

// Send writes the held status (200 if none was set).
func (hw *HeldWriter) Send() {
	if hw.sent {
		return
	}
	hw.sent = true
	if hw.code == 0 {
		hw.code = http.StatusOK
	}
	hw.ResponseWriter.WriteHeader(hw.code)
}
