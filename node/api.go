package node

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/net/netutil"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
)

// ErrNotLoopback reports an API address that is not on loopback.
var ErrNotLoopback = errors.New("the local API binds only to a loopback address")

// checkLoopback accepts host:port where host is a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// IDInfo is the node's identity.
type IDInfo struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// ID describes the node, its addresses worth giving to others first:
// public direct ones, then LAN ones, then relayed ones, loopback last.
func (n *Node) ID() IDInfo {
	info := IDInfo{PeerID: n.Host.ID().String()}
	addrs := n.Addrs()
	sort.SliceStable(addrs, func(i, j int) bool { return addrRank(addrs[i]) < addrRank(addrs[j]) })
	for _, a := range addrs {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info
}

// addrRank orders addresses by how useful they are to a stranger.
func addrRank(a ma.Multiaddr) int {
	switch {
	case isRelayAddr(a):
		return 2
	case manet.IsIPLoopback(a):
		return 3
	case manet.IsPublicAddr(a):
		return 0
	}
	return 1
}

// Event is one line of a streamed API reply (NDJSON): progress, then a
// result or an error.
type Event struct {
	Event    string          `json:"event"` // "progress", "result", "error"
	Progress *fetch.Progress `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

type addRequest struct {
	Path string `json:"path"`
	// FollowExternalLinks adds what symlinks point at outside the folder.
	FollowExternalLinks bool `json:"follow_external_links,omitempty"`
}

type getRequest struct {
	CID       string `json:"cid,omitempty"`
	Name      string `json:"name,omitempty"` // keyID/name, instead of cid
	Dir       string `json:"dir"`
	Force     bool   `json:"force"`
	Publisher string `json:"publisher,omitempty"` // key ID that must have signed
}

type publishRequest struct {
	Key  string        `json:"key"` // publisher key name ("self" or "")
	Name string        `json:"name"`
	CID  string        `json:"cid"`
	TTL  time.Duration `json:"ttl_ns"`
}

type resolveRequest struct {
	Publisher string `json:"publisher"` // key ID
	Name      string `json:"name"`
}

type verifyRequest struct {
	CID string `json:"cid"`
}

// APIHandler returns the daemon's HTTP API. Every request must carry
// "Authorization: Bearer <token>"; a request from a browser (with an Origin
// header) is refused outright.
func (n *Node) APIHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, n.ID()) })
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, n.Status()) })
	mux.HandleFunc("GET /v1/ls", func(w http.ResponseWriter, r *http.Request) {
		roots, err := n.Index.Roots()
		if err != nil {
			httpError(w, err, http.StatusInternalServerError)
			return
		}
		writeJSON(w, roots)
	})
	mux.HandleFunc("GET /v1/files", func(w http.ResponseWriter, r *http.Request) {
		root, err := content.ParseCID(r.URL.Query().Get("root"))
		if err != nil {
			httpError(w, err, http.StatusBadRequest)
			return
		}
		files, err := n.Index.Files(root)
		if err != nil {
			httpError(w, err, http.StatusNotFound)
			return
		}
		writeJSON(w, files)
	})
	mux.HandleFunc("POST /v1/add", streamed(func(ctx context.Context, req addRequest, progress func(fetch.Progress)) (any, error) {
		if !filepath.IsAbs(req.Path) {
			return nil, fmt.Errorf("path %s is not absolute", content.Quote(req.Path))
		}
		opt := content.ImportOptions{FollowExternalLinks: req.FollowExternalLinks}
		total := content.ImportSize(req.Path, opt)
		var done atomic.Int64
		stop := ticker(func() { progress(fetch.Progress{Phase: "hashing", Done: done.Load(), Total: total}) })
		defer stop()
		opt.Progress = func(k int64) { done.Add(k) }
		return n.Add(ctx, req.Path, opt)
	}))
	mux.HandleFunc("POST /v1/get", streamed(func(ctx context.Context, req getRequest, progress func(fetch.Progress)) (any, error) {
		if !filepath.IsAbs(req.Dir) {
			return nil, fmt.Errorf("output folder %s is not absolute", content.Quote(req.Dir))
		}
		opt := GetOptions{Force: req.Force, Progress: progress, Publisher: req.Publisher}
		var root cid.Cid
		var err error
		if req.Name != "" {
			keyID, name, _ := SplitName(req.Name)
			rec, err := n.Resolve(ctx, keyID, name)
			if err != nil {
				return nil, err
			}
			root, opt.Publisher, opt.Records = rec.Root.Cid, rec.Key, [][]byte{rec.Envelope}
		} else if root, err = content.ParseCID(req.CID); err != nil {
			return nil, err
		}
		res, err := n.Get(ctx, root, req.Dir, opt)
		if err != nil {
			return nil, err
		}
		if n.ann != nil {
			n.ann.add(root)
		}
		return res, nil
	}))
	mux.HandleFunc("POST /v1/verify", streamed(func(ctx context.Context, req verifyRequest, progress func(fetch.Progress)) (any, error) {
		root, err := content.ParseCID(req.CID)
		if err != nil {
			return nil, err
		}
		var done atomic.Int64
		stop := ticker(func() { progress(fetch.Progress{Phase: "verifying", Done: done.Load()}) })
		defer stop()
		return Verify(ctx, n.Home, n.Index, root, func(k int64) { done.Add(k) })
	}))
	mux.HandleFunc("POST /v1/publish", streamed(func(ctx context.Context, req publishRequest, _ func(fetch.Progress)) (any, error) {
		root, err := content.ParseCID(req.CID)
		if err != nil {
			return nil, err
		}
		if err := CheckTTL(req.TTL); err != nil {
			return nil, err
		}
		key, err := n.Home.PublisherKey(req.Key)
		if err != nil {
			return nil, err
		}
		s, err := n.Publish(ctx, key, req.Name, root, req.TTL)
		if s == nil {
			return nil, err
		}
		res := PublishResult{Signer: n.Home.signer(s), OnDHT: err == nil}
		if err != nil {
			res.Warning = err.Error()
		}
		return res, nil
	}))
	mux.HandleFunc("POST /v1/resolve", streamed(func(ctx context.Context, req resolveRequest, _ func(fetch.Progress)) (any, error) {
		s, err := n.Resolve(ctx, req.Publisher, req.Name)
		if err != nil {
			return nil, err
		}
		return n.Home.signer(s), nil
	}))
	return guard(token, mux)
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
		if !loopbackHost(r.Host) {
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

// loopbackHost reports whether a Host header names loopback: "localhost",
// an address in 127.0.0.0/8, or ::1, with or without a port.
func loopbackHost(host string) bool {
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

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, err error, code int) {
	http.Error(w, err.Error(), code)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, fmt.Errorf("bad request: %w", err), http.StatusBadRequest)
		return false
	}
	return true
}

// ticker calls f every 200 ms until stopped.
func ticker(f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f()
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// streamed makes a handler that decodes a JSON request of type T and
// streams op's progress and result.
func streamed[T any](op func(ctx context.Context, req T, progress func(fetch.Progress)) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req T
		if !readJSON(w, r, &req) {
			return
		}
		stream(w, r, func(ctx context.Context, progress func(fetch.Progress)) (any, error) { return op(ctx, req, progress) })
	}
}

// stream runs op and writes its progress, then its result or error, as
// NDJSON events. The operation stops if the client goes away.
func stream(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, progress func(fetch.Progress)) (any, error)) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
		if fl != nil {
			fl.Flush()
		}
	}
	res, err := op(r.Context(), func(p fetch.Progress) { send(Event{Event: "progress", Progress: &p}) })
	if err != nil {
		send(Event{Event: "error", Error: err.Error()})
		return
	}
	b, _ := json.Marshal(res)
	send(Event{Event: "result", Result: b})
}

// apiLimits bound the local API's connections (variables so tests can
// shorten them).
var apiLimits = struct {
	header time.Duration // to read a request's headers
	idle   time.Duration // a kept-alive connection waiting for a request
	conns  int           // connections open at once
}{5 * time.Second, time.Minute, 512}

// ServeAPI serves the API on ln until ctx ends, then closes ln. Headers
// must arrive promptly and an idle kept-alive connection is closed, but
// a reply has no time limit: add and get stream progress for as long as
// they run. At most apiLimits.conns connections are served at once;
// more wait to be accepted.
func (n *Node) ServeAPI(ctx context.Context, ln net.Listener, token string) error {
	srv := &http.Server{
		Handler:           n.APIHandler(token),
		ReadHeaderTimeout: apiLimits.header,
		IdleTimeout:       apiLimits.idle,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(netutil.LimitListener(ln, apiLimits.conns)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
