package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/httpx"
)

// Store is what the gateway needs of the node.
type Store interface {
	// Block returns a block this node holds (a chunk or a manifest block), verified; an error wrapping content.ErrNotFound if it does not.
	Block(ctx context.Context, c cid.Cid) ([]byte, error)
	// Manifest returns root's manifest, verified (from the index or fetched from peers).
	Manifest(ctx context.Context, root cid.Cid) (*content.Manifest, error)
	// ReadFile writes bytes [off, off+n) of file i of root's manifest to w, each chunk verified before a byte of it is written.
	ReadFile(ctx context.Context, root cid.Cid, i int, off, n int64, w io.Writer) error
}

// Media types of the trustless gateway.
const (
	// MediaRaw is the type of a single raw block, the one response type
	// /ipfs/{cid} serves.
	MediaRaw = "application/vnd.ipld.raw"
	// MediaCAR is the type of a CAR stream, which is not served.
	MediaCAR = "application/vnd.ipld.car"
)

// ProbeCID is the empty identity CID a trustless-gateway client asks for
// to learn whether an endpoint is one; it is answered with an empty raw
// block although identity CIDs are otherwise off the allowlist.
const ProbeCID = "bafkqaaa"

// cacheImmutable is the Cache-Control of anything named by a CID: it never
// changes.
const cacheImmutable = "public, max-age=29030400, immutable"

// storeTimeout bounds a request's wait for a block or a manifest (which
// the node may fetch from peers). Reading a file's bytes is bounded by
// the client's connection instead: a large file takes as long as it takes.
const storeTimeout = time.Minute

// New returns the gateway's handler over st. Only GET and HEAD are
// answered (405 otherwise). On a loopback connection (or one whose local
// address is unknown) a request must name a loopback Host: localhost,
// 127.0.0.0/8 or ::1 (421 otherwise), so a web page whose name was
// rebound to 127.0.0.1 cannot read from it, and a request a web page of
// another site made is refused (403): it could have the node fetch any
// model. At most MaxDownloads file bodies stream at once (503 beyond),
// a request for several ranges gets the whole file, and a client that
// stops reading for writeStall is cut off. log may be nil.
func New(st Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{st: st, log: log, slots: make(httpx.Slots, MaxDownloads)}
	mux := http.NewServeMux()
	mux.HandleFunc("/ipfs/{cid}", h.block)
	mux.HandleFunc("/ipfs/{cid}/{rest...}", h.block)
	mux.HandleFunc("/models/{root}", h.model)
	mux.HandleFunc("/models/{root}/{path...}", h.model)
	return guard(mux)
}

type handler struct {
	st    Store
	log   *slog.Logger
	slots httpx.Slots
}

// MaxDownloads bounds the file bodies the gateway streams at once.
const MaxDownloads = 32

// writeStall is how long a client may leave a write of the body waiting.
const writeStall = 30 * time.Second

// guard applies the method and Host rules before any route is matched.
func guard(next http.Handler) http.Handler {
	return httpx.Guard("the gateway", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the gateway answers only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	}))
}

// block serves GET/HEAD /ipfs/{cid}[/{rest}] as a raw block.
func (h *handler) block(w http.ResponseWriter, r *http.Request) {
	if code, msg := negotiateRaw(r); code != 0 {
		http.Error(w, msg, code)
		return
	}
	if r.PathValue("rest") != "" {
		http.Error(w, "a raw block is served only at /ipfs/{cid}, without a path", http.StatusBadRequest)
		return
	}
	s := r.PathValue("cid")
	if s == ProbeCID {
		h.serveRaw(w, r, s, nil)
		return
	}
	c, err := content.ParseCID(s)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	data, err := h.st.Block(ctx, c)
	cancel()
	if err == nil {
		// Every block is re-hashed before it is served, whatever the
		// store promises.
		err = content.VerifyBlock(c, data)
	}
	if err != nil {
		if errors.Is(err, content.ErrNotFound) && onlyIfCached(r) {
			http.Error(w, "block not held by this node", http.StatusPreconditionFailed)
			return
		}
		h.fail(w, r, err)
		return
	}
	h.serveRaw(w, r, c.String(), data)
}

// serveRaw answers a block's bytes with the headers of the trustless
// gateway's block responses; ServeContent handles HEAD, Range and
// If-None-Match.
func (h *handler) serveRaw(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	hd := w.Header()
	hd.Set("Content-Type", MediaRaw)
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name + ".bin"}))
	hd.Set("ETag", `"`+name+`.raw"`)
	hd.Set("Cache-Control", cacheImmutable)
	hd.Set("Vary", "Accept")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// negotiateRaw checks that the request asks for a raw block: ?format=raw,
// or (with no format) an Accept that lists application/vnd.ipld.raw
// with a non-zero weight. Otherwise it returns the status and message of
// the refusal: 400 when nothing was asked for (the strict trustless
// gateway's answer), 406 for anything else, CAR and deserialized
// responses included.
func negotiateRaw(r *http.Request) (int, string) {
	switch f := r.URL.Query().Get("format"); f {
	case "raw":
		return 0, ""
	case "":
	default:
		return http.StatusNotAcceptable, "format=" + strconv.Quote(f) + " is not served: this gateway serves raw blocks only (format=raw)"
	}
	accept := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(accept) == "" {
		return http.StatusBadRequest, "this gateway serves raw blocks only: send Accept: " + MediaRaw + " or ?format=raw"
	}
	for _, rng := range strings.Split(accept, ",") {
		typ, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
		if err != nil || typ != MediaRaw {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		return 0, ""
	}
	return http.StatusNotAcceptable, "this gateway serves raw blocks only (" + MediaRaw + "): no CAR, no deserialized responses"
}

// onlyIfCached reports a request with Cache-Control: only-if-cached.
func onlyIfCached(r *http.Request) bool {
	for _, v := range r.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}

// Listing is the JSON answer to /models/{root}/: the model's files in
// manifest order.
type Listing struct {
	Root  string       `json:"root"`
	Files []ListedFile `json:"files"`
}

// ListedFile is one file of a Listing.
type ListedFile struct {
	Path   string `json:"path"`   // manifest path, slash-separated
	Size   uint64 `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // whole-file sha256, lower-case hex
}

// model serves GET/HEAD /models/{root}[/{path...}]: the listing when path
// is empty, else the file.
func (h *handler) model(w http.ResponseWriter, r *http.Request) {
	root, err := content.ParseCID(r.PathValue("root"))
	if err == nil {
		err = content.CheckRoot(root)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	m, err := h.st.Manifest(ctx, root)
	cancel()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := r.PathValue("path")
	if p == "" {
		h.serveListing(w, r, root, m)
		return
	}
	i := fileIndex(m, p)
	if i < 0 {
		http.Error(w, "no file "+content.Quote(p)+" in model "+root.String(), http.StatusNotFound)
		return
	}
	h.serveFile(w, r, root, m, i)
}

// fileIndex returns the index of the file at path p in m, or -1. The
// scan is linear: a manifest's order is the publisher's word, and a
// lookup that cannot be fooled by an unsorted list is worth microseconds.
func fileIndex(m *content.Manifest, p string) int {
	for i, f := range m.Files {
		if f.Path == p {
			return i
		}
	}
	return -1
}

func (h *handler) serveListing(w http.ResponseWriter, r *http.Request, root cid.Cid, m *content.Manifest) {
	l := Listing{Root: root.String(), Files: make([]ListedFile, len(m.Files))}
	for i, f := range m.Files {
		l.Files[i] = ListedFile{Path: f.Path, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256)}
	}
	body, err := json.Marshal(l)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body = append(body, '\n')
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("ETag", `"`+root.String()+`.json"`)
	hd.Set("Cache-Control", cacheImmutable)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// serveFile streams file i of m through http.ServeContent (Range, 206,
// 416, HEAD, If-None-Match). Its status is held back until the first
// byte of the body: a file whose first bytes cannot be read (chunks no
// one serves, a file changed on disk) is answered with an error status,
// not a 200 cut short. An error later in the body ends the reply short
// of its Content-Length, which a client sees.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, root cid.Cid, m *content.Manifest, i int) {
	f := m.Files[i]
	ctx := r.Context()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+hex.EncodeToString(f.SHA256)+`"`)
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Cache-Control", cacheImmutable)
	before, after := h.slots.ServeFile(w, r, int64(f.Size), func(off, n int64, dst io.Writer) error {
		return h.st.ReadFile(ctx, root, i, off, n, dst)
	}, writeStall)
	switch {
	case before != nil:
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Type", "ETag", "Accept-Ranges", "Cache-Control"} {
			hd.Del(k)
		}
		h.fail(w, r, before)
	case after != nil && ctx.Err() == nil:
		h.log.Warn("file read failed mid-reply", "root", root, "path", content.Escape(f.Path), "err", after)
	}
}

// fail answers a store error with a status that says whose it is. The
// text of a 5xx is generic (the error may name local files); the error is
// logged.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	if r.Context().Err() != nil {
		// The client went away: nobody reads the answer.
		h.log.Debug("request ended", "path", content.Escape(r.URL.Path), "err", err)
		return
	}
	msg := http.StatusText(code)
	switch code {
	case http.StatusNotFound:
		msg = "not held by this node"
	case http.StatusBadRequest:
		msg = err.Error()
	default:
		h.log.Warn("request failed", "path", content.Escape(r.URL.Path), "status", code, "err", err)
	}
	http.Error(w, msg, code)
}

// status maps a store error to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, content.ErrNotFound), errors.Is(err, content.ErrChanged):
		return http.StatusNotFound
	case errors.Is(err, content.ErrBadCID), errors.Is(err, content.ErrHashNotAllowed), errors.Is(err, content.ErrNotRoot):
		return http.StatusBadRequest
	case errors.Is(err, content.ErrHashMismatch), errors.Is(err, content.ErrBadManifest):
		return http.StatusBadGateway // what peers sent, or the disk holds, is wrong
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
