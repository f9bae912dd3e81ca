package hf

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/httpx"
)

// Models is what the endpoint needs of the node.
type Models interface {
	// Resolve maps a repo id ("publisher/name") and a revision to a root.
	// rev is "main" (the newest record of the name) or a root CID in text form.
	// It fails with an error wrapping ErrRepoNotFound or ErrRevisionNotFound.
	Resolve(ctx context.Context, repo, rev string) (cid.Cid, error)
	// Manifest returns root's manifest, verified (from the index or fetched from peers).
	Manifest(ctx context.Context, root cid.Cid) (*content.Manifest, error)
	// ReadFile writes bytes [off, off+n) of file i of root's manifest to w,
	// each chunk verified before a byte of it is written (from local copies or peers).
	ReadFile(ctx context.Context, root cid.Cid, i int, off, n int64, w io.Writer) error
}

// treePageSize is the most entries one tree listing returns; a Link
// header with rel="next" leads to the rest. A variable so tests can page
// small listings.
var treePageSize = 1000

// Limits on what a request may carry.
const (
	maxRepoPart       = 100     // bytes in each half of a repo id
	maxRevision       = 256     // bytes in a revision
	maxPathsInfoBody  = 8 << 20 // bytes of a paths-info request body
	maxPathsInfoPaths = 10000   // paths in one paths-info request
)

// hubEpoch stands for the dates the Hub reports (lastModified, a file's
// last commit): a manifest records none.
const hubEpoch = "1970-01-01T00:00:00.000Z"

// NewEndpoint returns an http.Handler that serves the read side of the
// Hugging Face Hub API over m, for models only:
//
//	GET  /api/models/{org}/{name}                        model info at "main"
//	GET  /api/models/{org}/{name}/revision/{rev}         model info
//	GET  /api/models/{org}/{name}/tree/{rev}[/{path}]    listing, paginated by Link
//	POST /api/models/{org}/{name}/paths-info/{rev}       entries of given paths
//	GET  /{org}/{name}/resolve/{rev}/{path}              a file (also HEAD, Range)
//	GET  /{org}/{name}/raw/{rev}/{path}                  the same
//
// A revision is "main" (or "HEAD"), a root CID, or the commit hash of a
// root (see Commit) of that repo: its "main" root or one of the last 4096
// the endpoint has reported. Every file is described as stored in Git LFS,
// its LFS oid and ETag being its sha256, so clients name cached blobs by
// it; a tree listing of a file's path lists that file. Errors are answered as the Hub answers
// them: the status, an X-Error-Code header (RepoNotFound,
// RevisionNotFound, EntryNotFound) and a JSON body {"error": message}.
// It offers no Xet storage. log may be nil.
func NewEndpoint(m Models, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &hubEndpoint{m: m, log: log, commits: newCommitMemo(commitMemoSize), slots: make(httpx.Slots, maxDownloads)}
}

// hubEndpoint is the handler NewEndpoint returns.
type hubEndpoint struct {
	m       Models
	log     *slog.Logger
	commits *commitMemo
	slots   httpx.Slots
}

// hubRouteKind is which of the endpoint's routes a request is for.
type hubRouteKind int

const (
	routeInfo hubRouteKind = iota
	routeTree
	routePathsInfo
	routeFile
)

// hubRoute is a request's route, its parts unescaped once.
type hubRoute struct {
	kind hubRouteKind
	repo string
	rev  string
	path string // in the repo; "" for its top
}

func (e *hubEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, herr := parseHubRoute(r.URL.EscapedPath())
	if herr != nil {
		writeHubError(w, herr)
		return
	}
	allowed := []string{http.MethodGet, http.MethodHead}
	if rt.kind == routePathsInfo {
		allowed = []string{http.MethodPost}
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeHubError(w, &hubError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed here"})
		return
	}
	var err error
	switch rt.kind {
	case routeInfo:
		err = e.serveInfo(w, r, rt)
	case routeTree:
		err = e.serveTree(w, r, rt)
	case routePathsInfo:
		err = e.servePathsInfo(w, r, rt)
	case routeFile:
		err = e.serveFile(w, r, rt)
	}
	if err != nil {
		e.fail(w, r, rt, err)
	}
}

// parseHubRoute splits an escaped URL path into a route. Each segment is
// unescaped once, so a revision sent as refs%2Fpr%2F1 stays one segment.
func parseHubRoute(escaped string) (hubRoute, *hubError) {
	raw := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return hubRoute{}, hubBadRequest("malformed escape in the URL path")
		}
		segs[i] = u
	}
	notFound := &hubError{status: http.StatusNotFound, code: codeRepoNotFound,
		msg: "Repository not found: this endpoint serves /api/models/{org}/{name}[/revision|/tree|/paths-info] and /{org}/{name}/resolve/{rev}/{path}"}
	var rt hubRoute
	var rest []string
	switch {
	case len(segs) >= 4 && segs[0] == "api" && segs[1] == "models":
		rt.repo, rest = segs[2]+"/"+segs[3], segs[4:]
		switch {
		case len(rest) == 0:
			rt.kind, rt.rev = routeInfo, "main"
		case len(rest) == 2 && rest[0] == "revision":
			rt.kind, rt.rev = routeInfo, rest[1]
		case len(rest) >= 2 && rest[0] == "tree":
			rt.kind, rt.rev = routeTree, rest[1]
			rt.path = strings.TrimSuffix(strings.Join(rest[2:], "/"), "/")
		case len(rest) == 2 && rest[0] == "paths-info":
			rt.kind, rt.rev = routePathsInfo, rest[1]
		default:
			return hubRoute{}, notFound
		}
		if !hubValidRepoPart(segs[2]) || !hubValidRepoPart(segs[3]) {
			return hubRoute{}, hubRepoNotFound(rt.repo)
		}
	case len(segs) >= 5 && segs[0] != "api" && (segs[2] == "resolve" || segs[2] == "raw"):
		rt.kind, rt.repo, rt.rev = routeFile, segs[0]+"/"+segs[1], segs[3]
		rt.path = strings.Join(segs[4:], "/")
		if !hubValidRepoPart(segs[0]) || !hubValidRepoPart(segs[1]) {
			return hubRoute{}, hubRepoNotFound(rt.repo)
		}
		if err := content.CheckPath(rt.path); err != nil {
			return hubRoute{}, hubBadRequest("invalid file path " + content.Quote(rt.path))
		}
	default:
		return hubRoute{}, notFound
	}
	if rt.rev == "" || len(rt.rev) > maxRevision {
		return hubRoute{}, hubBadRequest(fmt.Sprintf("a revision is 1 to %d bytes", maxRevision))
	}
	if rt.path != "" && rt.kind == routeTree {
		if err := content.CheckPath(rt.path); err != nil {
			return hubRoute{}, hubBadRequest("invalid path " + content.Quote(rt.path))
		}
	}
	return rt, nil
}

// hubValidRepoPart accepts an organization or model name: 1 to 100 bytes of
// [A-Za-z0-9._-], not made of dots only.
func hubValidRepoPart(s string) bool {
	if s == "" || len(s) > maxRepoPart || strings.Trim(s, ".") == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// resolveRev maps a route's revision to a root and its commit, and
// remembers the commit for the repo.
func (e *hubEndpoint) resolveRev(ctx context.Context, repo, rev string) (cid.Cid, string, error) {
	var root cid.Cid
	var err error
	switch {
	case rev == "main" || rev == "HEAD": // HEAD: what clients ask for when given no revision
		root, err = e.m.Resolve(ctx, repo, "main")
	case isCommitHash(rev):
		if r, ok := e.commits.get(repo, rev); ok {
			return r, rev, nil
		}
		if root, err = e.m.Resolve(ctx, repo, "main"); err == nil && Commit(root) != rev {
			err = fmt.Errorf("%w: %s is not the commit of %s's main or of a root served lately", ErrRevisionNotFound, rev, repo)
		}
	default:
		if _, perr := content.ParseCID(rev); perr == nil {
			root, err = e.m.Resolve(ctx, repo, rev)
			break
		}
		// Neither a branch we have nor a root: say whether the repo exists.
		if _, err = e.m.Resolve(ctx, repo, "main"); err == nil {
			err = fmt.Errorf("%w: %s is not main, a commit or a root CID", ErrRevisionNotFound, content.Quote(rev))
		}
	}
	if err != nil {
		return cid.Undef, "", err
	}
	commit := Commit(root)
	if commit == "" {
		return cid.Undef, "", fmt.Errorf("resolve %s at %s: root %s has no sha2-256 digest", repo, content.Quote(rev), root)
	}
	e.commits.put(repo, commit, root)
	return root, commit, nil
}

// hubModel is a resolved revision with its manifest.
type hubModel struct {
	repo   string
	root   cid.Cid
	commit string
	m      *content.Manifest
}

func (e *hubEndpoint) model(ctx context.Context, rt hubRoute) (*hubModel, error) {
	root, commit, err := e.resolveRev(ctx, rt.repo, rt.rev)
	if err != nil {
		return nil, err
	}
	m, err := e.m.Manifest(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", root, err)
	}
	return &hubModel{repo: rt.repo, root: root, commit: commit, m: m}, nil
}

// hubSibling is a file in model info.
type hubSibling struct {
	RFilename string      `json:"rfilename"`
	Size      *uint64     `json:"size,omitempty"`
	BlobID    string      `json:"blobId,omitempty"`
	LFS       *hubBlobLFS `json:"lfs,omitempty"`
}

// hubBlobLFS is a sibling's LFS facts (model info with blobs=true).
type hubBlobLFS struct {
	SHA256      string `json:"sha256"`
	Size        uint64 `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

// hubModelInfo is the model info document.
type hubModelInfo struct {
	InternalID   string       `json:"_id"`
	ID           string       `json:"id"`
	ModelID      string       `json:"modelId"`
	Author       string       `json:"author"`
	SHA          string       `json:"sha"`
	LastModified string       `json:"lastModified"`
	CreatedAt    string       `json:"createdAt"`
	Private      bool         `json:"private"`
	Gated        bool         `json:"gated"`
	Disabled     bool         `json:"disabled"`
	Downloads    int          `json:"downloads"`
	Likes        int          `json:"likes"`
	Tags         []string     `json:"tags"`
	Siblings     []hubSibling `json:"siblings"`
	UsedStorage  int64        `json:"usedStorage"`
}

func (e *hubEndpoint) serveInfo(w http.ResponseWriter, r *http.Request, rt hubRoute) error {
	hm, err := e.model(r.Context(), rt)
	if err != nil {
		return err
	}
	blobs := hubBool(r.URL.Query(), "blobs")
	info := hubModelInfo{
		InternalID: hm.root.String(), ID: hm.repo, ModelID: hm.repo, Author: strings.SplitN(hm.repo, "/", 2)[0],
		SHA: hm.commit, LastModified: hubEpoch, CreatedAt: hubEpoch,
		Tags: []string{}, Siblings: make([]hubSibling, len(hm.m.Files)), UsedStorage: hm.m.Size(),
	}
	for i, f := range hm.m.Files {
		s := hubSibling{RFilename: f.Path}
		if blobs {
			s.Size = &f.Size
			s.BlobID = hubBlobOID(f)
			s.LFS = &hubBlobLFS{SHA256: hex.EncodeToString(f.SHA256), Size: f.Size, PointerSize: hubPointerSize(f.Size)}
		}
		info.Siblings[i] = s
	}
	writeHubJSON(w, http.StatusOK, info)
	return nil
}

// hubEntry is a file or folder as tree and paths-info list it.
type hubEntry struct {
	Type       string         `json:"type"` // "file" or "directory"
	OID        string         `json:"oid"`
	Size       uint64         `json:"size"`
	Path       string         `json:"path"`
	LFS        *hubLFS        `json:"lfs,omitempty"`
	LastCommit *hubLastCommit `json:"lastCommit,omitempty"`
}

// hubLFS is a file's LFS pointer facts.
type hubLFS struct {
	OID         string `json:"oid"` // the file's sha256, hex
	Size        uint64 `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

// hubLastCommit is the commit an entry was last changed in: for Shoal,
// the revision's own.
type hubLastCommit struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Date  string `json:"date"`
}

// hubBlobOID is the git-blob-like oid of a file: the hex of the first 20
// bytes of its sha256.
func hubBlobOID(f content.File) string { return hex.EncodeToString(f.SHA256[:commitHexLen/2]) }

// hubPointerSize is the size of the git LFS pointer file of a file of
// size bytes: "version https://git-lfs.github.com/spec/v1\n" (43),
// "oid sha256:<64 hex>\n" (76), "size <digits>\n".
func hubPointerSize(size uint64) int { return 43 + 76 + 6 + len(strconv.FormatUint(size, 10)) }

// hubListing is a manifest's files and the folders they imply, by path.
type hubListing struct {
	hm    *hubModel
	files map[string]int  // path → index in the manifest
	dirs  map[string]bool // every folder that holds a file, at any depth
}

func newHubListing(hm *hubModel) *hubListing {
	l := &hubListing{hm: hm, files: make(map[string]int, len(hm.m.Files)), dirs: map[string]bool{}}
	for i, f := range hm.m.Files {
		l.files[f.Path] = i
		for j := strings.IndexByte(f.Path, '/'); j >= 0; j = hubNextSlash(f.Path, j) {
			l.dirs[f.Path[:j]] = true
		}
	}
	return l
}

// hubNextSlash returns the index of the next '/' in s after i, or -1.
func hubNextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// under lists, sorted, the paths of the files and folders in folder dir
// ("" for the top): its children, or everything below it if recursive.
func (l *hubListing) under(dir string, recursive bool) []string {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var out []string
	add := func(p string) {
		rest, ok := strings.CutPrefix(p, prefix)
		if ok && rest != "" && (recursive || !strings.Contains(rest, "/")) {
			out = append(out, p)
		}
	}
	for p := range l.files {
		add(p)
	}
	for p := range l.dirs {
		add(p)
	}
	slices.Sort(out)
	return out
}

// entry describes path p, which must be a file or a folder of the listing.
func (l *hubListing) entry(p string, expand bool) hubEntry {
	var en hubEntry
	if i, ok := l.files[p]; ok {
		f := l.hm.m.Files[i]
		en = hubEntry{Type: "file", OID: hubBlobOID(f), Size: f.Size, Path: p,
			LFS: &hubLFS{OID: hex.EncodeToString(f.SHA256), Size: f.Size, PointerSize: hubPointerSize(f.Size)}}
	} else {
		sum := sha256.Sum256([]byte("shoal-hf-tree\x00" + l.hm.root.KeyString() + "\x00" + p))
		en = hubEntry{Type: "directory", OID: hex.EncodeToString(sum[:commitHexLen/2]), Path: p}
	}
	if expand {
		en.LastCommit = &hubLastCommit{ID: l.hm.commit, Title: "Shoal root " + l.hm.root.String(), Date: hubEpoch}
	}
	return en
}

func (e *hubEndpoint) serveTree(w http.ResponseWriter, r *http.Request, rt hubRoute) error {
	q := r.URL.Query()
	var after string
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return hubBadRequest("malformed cursor")
		}
		after = string(b)
	}
	hm, err := e.model(r.Context(), rt)
	if err != nil {
		return err
	}
	l := newHubListing(hm)
	var paths []string
	switch _, isFile := l.files[rt.path]; {
	case rt.path == "" || l.dirs[rt.path]:
		paths = l.under(rt.path, hubBool(q, "recursive"))
	case isFile:
		paths = []string{rt.path}
	default:
		return hubEntryNotFound(rt.path, rt.rev)
	}
	if after != "" {
		i, found := slices.BinarySearch(paths, after)
		if found {
			i++
		}
		paths = paths[i:]
	}
	if len(paths) > treePageSize {
		paths = paths[:max(treePageSize, 1)]
		next := *r.URL
		next.Scheme, next.Host = "http", r.Host
		if r.TLS != nil {
			next.Scheme = "https"
		}
		if next.Host == "" {
			next.Host = "localhost"
		}
		nq := next.Query()
		nq.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(paths[len(paths)-1])))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", "<"+next.String()+`>; rel="next"`)
	}
	expand := hubBool(q, "expand")
	out := make([]hubEntry, len(paths))
	for i, p := range paths {
		out[i] = l.entry(p, expand)
	}
	writeHubJSON(w, http.StatusOK, out)
	return nil
}

// pathsInfoRequest is the body of a paths-info request.
type pathsInfoRequest struct {
	Paths  []string `json:"paths"`
	Expand bool     `json:"expand"`
}

func (e *hubEndpoint) servePathsInfo(w http.ResponseWriter, r *http.Request, rt hubRoute) error {
	req, err := readPathsInfo(w, r)
	if err != nil {
		return err
	}
	hm, err := e.model(r.Context(), rt)
	if err != nil {
		return err
	}
	l := newHubListing(hm)
	out := []hubEntry{}
	seen := map[string]bool{}
	for _, p := range req.Paths {
		p = strings.TrimSuffix(p, "/")
		_, isFile := l.files[p]
		if seen[p] || !isFile && !l.dirs[p] {
			continue // the Hub leaves out paths that do not exist
		}
		seen[p] = true
		out = append(out, l.entry(p, req.Expand))
	}
	writeHubJSON(w, http.StatusOK, out)
	return nil
}

// readPathsInfo reads a paths-info body: JSON (the JavaScript client) or
// a form with repeated "paths" fields (the Python client).
func readPathsInfo(w http.ResponseWriter, r *http.Request) (*pathsInfoRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPathsInfoBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req pathsInfoRequest
	switch mt {
	case "application/json":
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&req); err != nil {
			return nil, hubBadRequest("paths-info body is not the expected JSON object")
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var err error
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(maxPathsInfoBody)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return nil, hubBadRequest("paths-info form does not parse")
		}
		req.Paths = r.PostForm["paths"]
		req.Expand = hubBool(r.PostForm, "expand")
	default:
		return nil, hubBadRequest("paths-info wants a JSON or form body")
	}
	if len(req.Paths) > maxPathsInfoPaths {
		return nil, hubBadRequest(fmt.Sprintf("%d paths in one paths-info request (at most %d)", len(req.Paths), maxPathsInfoPaths))
	}
	return &req, nil
}

func (e *hubEndpoint) serveFile(w http.ResponseWriter, r *http.Request, rt hubRoute) error {
	ctx := r.Context()
	hm, err := e.model(ctx, rt)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(hm.m.Files, func(f content.File) bool { return f.Path == rt.path })
	if i < 0 {
		return hubEntryNotFound(rt.path, rt.rev)
	}
	f := hm.m.Files[i]
	size := int64(f.Size)
	etag := `"` + hex.EncodeToString(f.SHA256) + `"`
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", etag)
	h.Set("X-Linked-Etag", etag)
	h.Set("X-Linked-Size", strconv.FormatInt(size, 10))
	h.Set("X-Repo-Commit", hm.commit)
	h.Set("Accept-Ranges", "bytes")
	if rg := r.Header.Get("Range"); rg != "" && !strings.Contains(rg, ",") && size == 0 {
		// http.ServeContent answers a range of an empty file with the whole
		// (empty) file; say its size, which clients read from Content-Range.
		h.Set("Content-Range", "bytes */0")
	}
	// The status waits for the first byte: a file that cannot be read
	// (not held and not fetched, changed on disk) is an error, not a 200
	// with nothing after it.
	before, after := e.slots.ServeFile(w, r, size, func(off, n int64, w io.Writer) error {
		return e.m.ReadFile(ctx, hm.root, i, off, n, w)
	}, writeStall)
	switch {
	case before != nil:
		for _, k := range []string{"Content-Length", "Content-Range", "Content-Type", "ETag", "X-Linked-Etag", "X-Linked-Size", "X-Repo-Commit", "Accept-Ranges"} {
			h.Del(k)
		}
		return before
	case after != nil && ctx.Err() == nil:
		// The status is sent; the connection closes short of Content-Length.
		e.log.Warn("hf: serving a file failed", "repo", hm.repo, "root", hm.root, "path", content.Escape(f.Path), "err", after)
	}
	return nil
}

// maxDownloads bounds the file bodies the endpoint streams at once (503
// beyond); writeStall is how long a client may leave a write waiting.
const (
	maxDownloads = 32
	writeStall   = 30 * time.Second
)

// hubBool reads a boolean parameter as the Hub's clients send it
// (true, True, 1).
func hubBool(v url.Values, key string) bool {
	s := v.Get(key)
	return strings.EqualFold(s, "true") || s == "1"
}

// fail answers a request that failed with err.
func (e *hubEndpoint) fail(w http.ResponseWriter, r *http.Request, rt hubRoute, err error) {
	var he *hubError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, ErrRepoNotFound):
		he = hubRepoNotFound(rt.repo)
	case errors.Is(err, ErrRevisionNotFound):
		he = &hubError{status: http.StatusNotFound, code: codeRevisionNotFound,
			msg: "Invalid rev id: " + content.Escape(rt.rev) + " (not main, a root CID, or the commit of one in " + rt.repo + ")"}
	case r.Context().Err() != nil:
		e.log.Debug("hf: request ended by the client", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &hubError{status: http.StatusServiceUnavailable, msg: "request canceled"}
	default:
		e.log.Error("hf: request failed", "method", r.Method, "path", r.URL.Path, "repo", rt.repo, "rev", rt.rev, "err", err)
		he = &hubError{status: http.StatusInternalServerError, msg: "internal error in the Shoal node (see its log)"}
	}
	writeHubError(w, he)
}
