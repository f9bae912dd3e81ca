package hf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/testmodel"
)

const epRepo = "pub-1/model.v2"

// epModels is an in-memory Models: repos of imported folders, their
// manifests and their bytes.
type epModels struct {
	repos     map[string][]cid.Cid // the last is "main"
	manifests map[cid.Cid]*content.Manifest
	data      map[cid.Cid]map[string][]byte
	resolves  atomic.Int64
	reads     atomic.Int64
	// manifestErr, if set, fails every Manifest call; readFail names a
	// path whose reads fail after sending half the bytes.
	manifestErr error
	readFail    string
}

func (f *epModels) Resolve(ctx context.Context, repo, rev string) (cid.Cid, error) {
	f.resolves.Add(1)
	roots, ok := f.repos[repo]
	if !ok {
		return cid.Undef, fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	if rev == "main" {
		return roots[len(roots)-1], nil
	}
	c, err := content.ParseCID(rev)
	if err != nil {
		return cid.Undef, fmt.Errorf("fake Resolve called with %q, neither main nor a CID", rev)
	}
	if !slices.Contains(roots, c) {
		return cid.Undef, fmt.Errorf("%w: %s", ErrRevisionNotFound, rev)
	}
	return c, nil
}

func (f *epModels) Manifest(ctx context.Context, root cid.Cid) (*content.Manifest, error) {
	if f.manifestErr != nil {
		return nil, f.manifestErr
	}
	m, ok := f.manifests[root]
	if !ok {
		return nil, fmt.Errorf("%w: %s", content.ErrNotFound, root)
	}
	return m, nil
}

func (f *epModels) ReadFile(ctx context.Context, root cid.Cid, i int, off, n int64, w io.Writer) error {
	f.reads.Add(1)
	m := f.manifests[root]
	if i < 0 || i >= len(m.Files) {
		return fmt.Errorf("file %d of %d", i, len(m.Files))
	}
	b := f.data[root][m.Files[i].Path]
	if off < 0 || n < 0 || off+n > int64(len(b)) {
		return fmt.Errorf("range [%d, %d) of %d bytes", off, off+n, len(b))
	}
	if m.Files[i].Path == f.readFail {
		w.Write(b[off : off+n/2])
		return errors.New("peer sent a bad chunk")
	}
	_, err := w.Write(b[off : off+n])
	return err
}

// epFixture is a repo of two versions served by an endpoint.
type epFixture struct {
	t      *testing.T
	models *epModels
	srv    *httptest.Server
	log    *epLog
	v1, v2 cid.Cid
	files  map[string][]byte // v2's files
	v1cfg  []byte            // v1's config.json
}

// epFiles writes a model folder and returns its files by path.
func epFiles(t *testing.T, dir string, seed uint64) map[string][]byte {
	t.Helper()
	if _, err := testmodel.Folder(dir, 3, seed); err != nil {
		t.Fatal(err)
	}
	extra := map[string][]byte{
		"empty.txt":              nil,
		"dir with space/ünï.bin": testmodel.Bytes(5000, seed+7),
		"a/b/c/deep.txt":         []byte("deep\n"),
	}
	for p, b := range extra {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *epModels) add(t *testing.T, repo, dir string, files map[string][]byte) cid.Cid {
	t.Helper()
	im, err := content.Import(context.Background(), dir, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := im.M.Root
	f.repos[repo] = append(f.repos[repo], root)
	f.manifests[root] = im.M
	f.data[root] = files
	return root
}

func newEPFixture(t *testing.T) *epFixture {
	t.Helper()
	fx := &epFixture{t: t, log: &epLog{}}
	fx.models = &epModels{repos: map[string][]cid.Cid{}, manifests: map[cid.Cid]*content.Manifest{}, data: map[cid.Cid]map[string][]byte{}}
	d1, d2 := filepath.Join(t.TempDir(), "v1"), filepath.Join(t.TempDir(), "v2")
	f1 := epFiles(t, d1, 1)
	fx.v1cfg = f1["config.json"]
	fx.v1 = fx.models.add(t, epRepo, d1, f1)
	fx.files = epFiles(t, d2, 1)
	fx.files["config.json"] = []byte(`{"architectures":["ShoalTestModel"],"hidden_size":128}` + "\n")
	if err := os.WriteFile(filepath.Join(d2, "config.json"), fx.files["config.json"], 0o644); err != nil {
		t.Fatal(err)
	}
	fx.v2 = fx.models.add(t, epRepo, d2, fx.files)
	if fx.v1 == fx.v2 {
		t.Fatal("the two versions have the same root")
	}
	fx.models.repos["pub-1/other"] = []cid.Cid{fx.v2}
	fx.start()
	return fx
}

func (fx *epFixture) start() {
	fx.srv = httptest.NewServer(NewEndpoint(fx.models, slog.New(slog.NewTextHandler(fx.log, nil))))
	fx.t.Cleanup(fx.srv.Close)
}

// epLog collects log output safely.
type epLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *epLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *epLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// do sends a request and returns the response with its body read. Every
// response is checked for Xet: no header name or value, and no JSON or
// text body, may mention it.
func (fx *epFixture) do(method, path string, hdr map[string]string, body string) (*http.Response, []byte) {
	fx.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = fx.srv.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		fx.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := fx.srv.Client().Do(req)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		fx.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	for k, vs := range resp.Header {
		for _, v := range append([]string{k}, vs...) {
			if strings.Contains(strings.ToLower(v), "xet") {
				fx.t.Errorf("%s %s: header %s: %s mentions xet", method, path, k, v)
			}
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") && bytes.Contains(bytes.ToLower(b), []byte("xet")) {
		fx.t.Errorf("%s %s: body mentions xet: %s", method, path, b)
	}
	return resp, b
}

// getJSON GETs path, wants status 200 and decodes the body into v.
func (fx *epFixture) getJSON(path string, v any) *http.Response {
	fx.t.Helper()
	resp, b := fx.do("GET", path, nil, "")
	if resp.StatusCode != http.StatusOK {
		fx.t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fx.t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		fx.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return resp
}

// epWantHubError checks a response is the Hub's error of status and code.
func epWantHubError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %s, want %d: %s", resp.Request.Method, resp.Request.URL, resp.Status, status, body)
	}
	if got := resp.Header.Get("X-Error-Code"); got != code {
		t.Fatalf("%s: X-Error-Code %q, want %q", resp.Request.URL, got, code)
	}
	if resp.Header.Get("X-Error-Message") == "" {
		t.Fatalf("%s: no X-Error-Message", resp.Request.URL)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("%s: body %q is not {\"error\": ...}", resp.Request.URL, body)
	}
}

func epSHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCommit(t *testing.T) {
	blk, err := content.EncodeBlock(content.Root{Format: content.FormatVersion, Chunker: content.ChunkerVersion})
	if err != nil {
		t.Fatal(err)
	}
	c := Commit(blk.CID)
	if want := epSHA256Hex(blk.Data)[:40]; c != want {
		t.Fatalf("Commit = %s, want %s (the first 20 bytes of the root block's sha256)", c, want)
	}
	if !isCommitHash(c) || isCommitHash(strings.ToUpper(c)) || isCommitHash(c[:39]) || isCommitHash(c+"0") {
		t.Fatal("isCommitHash does not match 40 lowercase hex digits exactly")
	}
	id, _ := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	if Commit(cid.NewCidV1(cid.DagCBOR, id)) != "" || Commit(cid.Undef) != "" {
		t.Fatal("Commit of a CID without a sha2-256 digest must be empty")
	}
}

func TestCommitMemoForgetsOldest(t *testing.T) {
	m := newCommitMemo(2)
	r := func(s string) cid.Cid { return content.SumCID(content.CodecDagCBOR, []byte(s)) }
	m.put("o/a", "c1", r("1"))
	m.put("o/a", "c2", r("2"))
	m.put("o/a", "c1", r("1")) // again: no change
	m.put("o/b", "c1", r("3"))
	if _, ok := m.get("o/a", "c1"); ok {
		t.Fatal("the oldest pair was kept past the bound")
	}
	if got, ok := m.get("o/a", "c2"); !ok || got != r("2") {
		t.Fatal("lost a recent pair")
	}
	if got, ok := m.get("o/b", "c1"); !ok || got != r("3") {
		t.Fatal("a commit is remembered per repo")
	}
	if _, ok := m.get("o/c", "c2"); ok {
		t.Fatal("a commit of one repo answered for another")
	}
}

type epInfo struct {
	ID, ModelID, SHA, LastModified string
	InternalID                     string `json:"_id"`
	Private, Gated, Disabled       *bool
	Tags                           []string
	Siblings                       []struct {
		RFilename string
		Size      uint64
		BlobID    string
		LFS       *struct {
			SHA256      string
			Size        uint64
			PointerSize int
		}
	}
}

func TestEndpointModelInfo(t *testing.T) {
	fx := newEPFixture(t)
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range fx.files {
			if !yield(p) {
				return
			}
		}
	})
	c1, c2 := Commit(fx.v1), Commit(fx.v2)
	for _, tc := range []struct{ path, sha string }{
		{"/api/models/" + epRepo, c2},
		{"/api/models/" + epRepo + "/revision/main?expand=pipeline_tag&expand=private&expand=sha", c2},
		{"/api/models/" + epRepo + "/revision/HEAD", c2},
		{"/api/models/" + epRepo + "/revision/" + c2, c2},
		{"/api/models/" + epRepo + "/revision/" + fx.v1.String(), c1},
	} {
		var info epInfo
		fx.getJSON(tc.path, &info)
		if info.SHA != tc.sha || info.ID != epRepo || info.ModelID != epRepo || info.InternalID == "" || info.LastModified == "" {
			t.Fatalf("%s: %+v", tc.path, info)
		}
		if info.Private == nil || *info.Private || info.Gated == nil || *info.Gated || info.Disabled == nil || *info.Disabled || info.Tags == nil {
			t.Fatalf("%s: private, gated, disabled, tags: %+v", tc.path, info)
		}
		var got []string
		for _, s := range info.Siblings {
			got = append(got, s.RFilename)
			if s.LFS != nil {
				t.Fatalf("%s: file metadata without blobs=true", tc.path)
			}
		}
		if tc.sha == c2 && !slices.Equal(got, paths) {
			t.Fatalf("%s: siblings %v, want %v", tc.path, got, paths)
		}
	}
	var info epInfo
	fx.getJSON("/api/models/"+epRepo+"?blobs=true", &info)
	for _, s := range info.Siblings {
		b := fx.files[s.RFilename]
		if s.LFS == nil || s.LFS.SHA256 != epSHA256Hex(b) || s.Size != uint64(len(b)) || s.BlobID != epSHA256Hex(b)[:40] {
			t.Fatalf("blobs=true: %+v", s)
		}
	}
}

func TestCommitRoundTrip(t *testing.T) {
	fx := newEPFixture(t)
	c1, c2 := Commit(fx.v1), Commit(fx.v2)
	base := "/api/models/" + epRepo + "/revision/"
	// v1's commit was never handed out, and is not main's: unknown.
	resp, b := fx.do("GET", base+c1, nil, "")
	epWantHubError(t, resp, b, 404, codeRevisionNotFound)
	// Asked by root CID, v1 is reported with its commit ...
	var info epInfo
	fx.getJSON(base+fx.v1.String(), &info)
	if info.SHA != c1 {
		t.Fatalf("sha %s, want %s", info.SHA, c1)
	}
	// ... which now names v1 everywhere, without asking Models again.
	before := fx.models.resolves.Load()
	fx.getJSON(base+c1, &info)
	if info.SHA != c1 {
		t.Fatalf("sha %s, want %s", info.SHA, c1)
	}
	resp, b = fx.do("GET", "/"+epRepo+"/resolve/"+c1+"/config.json", nil, "")
	if resp.StatusCode != 200 || !bytes.Equal(b, fx.v1cfg) || resp.Header.Get("X-Repo-Commit") != c1 {
		t.Fatalf("v1's config.json by commit: %s %q", resp.Status, b)
	}
	if n := fx.models.resolves.Load(); n != before {
		t.Fatalf("%d Resolve calls for a remembered commit", n-before)
	}
	// main's commit resolves on a fresh endpoint too (it asks for main).
	fresh := httptest.NewServer(NewEndpoint(fx.models, nil))
	defer fresh.Close()
	r2, err := fresh.Client().Get(fresh.URL + base + c2)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("main's commit on a fresh endpoint: %s", r2.Status)
	}
	// A commit is remembered for its repo only.
	resp, b = fx.do("GET", "/api/models/pub-1/other/revision/"+c1, nil, "")
	epWantHubError(t, resp, b, 404, codeRevisionNotFound)
	resp, b = fx.do("GET", "/api/models/nobody/none/revision/"+c1, nil, "")
	epWantHubError(t, resp, b, 404, codeRepoNotFound)
}

// epEntry is a tree or paths-info entry as a client reads it.
type epEntry struct {
	Type string
	OID  string
	Size uint64
	Path string
	LFS  *struct {
		OID         string
		Size        uint64
		PointerSize int
	}
	LastCommit *struct{ ID, Title, Date string }
}

// wantEntries computes, from the files alone, the tree entries under dir.
func (fx *epFixture) wantEntries(dir string, recursive bool) []string {
	set := map[string]bool{}
	for p := range fx.files {
		parts := strings.Split(p, "/")
		for i := 1; i <= len(parts); i++ {
			q := strings.Join(parts[:i], "/")
			if dir != "" && !strings.HasPrefix(q, dir+"/") {
				continue
			}
			rest := strings.TrimPrefix(q, dir+"/")
			if dir == "" {
				rest = q
			}
			if recursive || !strings.Contains(rest, "/") {
				set[q] = true
			}
		}
	}
	out := slices.Collect(func(yield func(string) bool) {
		for p := range set {
			if !yield(p) {
				return
			}
		}
	})
	slices.Sort(out)
	return out
}

func (fx *epFixture) checkEntries(what string, got []epEntry, want []string) {
	fx.t.Helper()
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
		b, isFile := fx.files[e.Path]
		switch {
		case isFile && (e.Type != "file" || e.Size != uint64(len(b)) || e.OID != epSHA256Hex(b)[:40] || e.LFS == nil ||
			e.LFS.OID != epSHA256Hex(b) || e.LFS.Size != uint64(len(b)) || e.LFS.PointerSize != len(epLFSPointer(b))):
			fx.t.Fatalf("%s: file entry %+v (lfs %+v)", what, e, e.LFS)
		case !isFile && (e.Type != "directory" || e.Size != 0 || e.LFS != nil || !isCommitHash(e.OID)):
			fx.t.Fatalf("%s: directory entry %+v", what, e)
		}
	}
	if !slices.Equal(paths, want) {
		fx.t.Fatalf("%s: paths\n%q\nwant\n%q", what, paths, want)
	}
}

// epLFSPointer is the git LFS pointer file of b.
func epLFSPointer(b []byte) string {
	return fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", epSHA256Hex(b), len(b))
}

func TestEndpointTree(t *testing.T) {
	fx := newEPFixture(t)
	tree := "/api/models/" + epRepo + "/tree/"
	c2 := Commit(fx.v2)
	for _, tc := range []struct {
		rev, dir  string
		recursive bool
	}{
		{"main", "", true},
		{c2, "", true},
		{"main", "", false},
		{fx.v2.String(), "tokenizer", false},
		{"main", "tokenizer", true},
		{"main", "a/b", false},
		{"main", "dir with space", true},
	} {
		p := tree + tc.rev
		if tc.dir != "" {
			p += "/" + (&url.URL{Path: tc.dir}).EscapedPath()
		}
		p += "?recursive=" + strconv.FormatBool(tc.recursive) + "&expand=false"
		var got []epEntry
		resp := fx.getJSON(p, &got)
		if resp.Header.Get("Link") != "" {
			t.Fatalf("%s: Link header on a single page", p)
		}
		fx.checkEntries(p, got, fx.wantEntries(tc.dir, tc.recursive))
		for _, e := range got {
			if e.LastCommit != nil {
				t.Fatalf("%s: lastCommit without expand", p)
			}
		}
	}
	var got []epEntry
	fx.getJSON(tree+"main/tokenizer/tokenizer.json", &got)
	fx.checkEntries("a file's path", got, []string{"tokenizer/tokenizer.json"})
	fx.getJSON(tree+"main?recursive=true&expand=true", &got)
	for _, e := range got {
		if e.LastCommit == nil || e.LastCommit.ID != c2 {
			t.Fatalf("expand=true: %+v", e)
		}
	}
	for _, p := range []string{"nope", "tokenizer/nope", "a/b/c/deep.txt/x"} {
		resp, b := fx.do("GET", tree+"main/"+p, nil, "")
		epWantHubError(t, resp, b, 404, codeEntryNotFound)
	}
	resp, b := fx.do("GET", tree+"main?cursor=!!!", nil, "")
	if resp.StatusCode != 400 {
		t.Fatalf("bad cursor: %s %s", resp.Status, b)
	}
	resp, b = fx.do("GET", tree+"nobranch", nil, "")
	epWantHubError(t, resp, b, 404, codeRevisionNotFound)
}

func TestEndpointTreePages(t *testing.T) {
	old := treePageSize
	treePageSize = 2 // before the server starts, so its goroutines see it
	t.Cleanup(func() { treePageSize = old })
	fx := newEPFixture(t)
	linkRE := regexp.MustCompile(`^<(https?://[^>]+)>; rel="next"$`) // as the JS client parses it
	for _, recursive := range []bool{true, false} {
		next := fx.srv.URL + "/api/models/" + epRepo + "/tree/main?recursive=" + strconv.FormatBool(recursive) + "&expand=true"
		var all []epEntry
		pages := 0
		for next != "" {
			if pages++; pages > 100 {
				t.Fatal("more than 100 pages")
			}
			var page []epEntry
			resp := fx.getJSON(next, &page)
			if len(page) > 2 || len(page) == 0 {
				t.Fatalf("a page of %d entries", len(page))
			}
			all = append(all, page...)
			next = ""
			if l := resp.Header.Get("Link"); l != "" {
				m := linkRE.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("Link header %q", l)
				}
				next = m[1]
				if u, _ := url.Parse(next); u.Query().Get("expand") != "true" || u.Query().Get("cursor") == "" {
					t.Fatalf("next page URL %s", next)
				}
			}
		}
		want := fx.wantEntries("", recursive)
		if wantPages := (len(want) + 1) / 2; pages != wantPages {
			t.Fatalf("%d pages for %d entries", pages, len(want))
		}
		fx.checkEntries("paged listing", all, want)
	}
}

func TestEndpointPathsInfo(t *testing.T) {
	fx := newEPFixture(t)
	u := "/api/models/" + epRepo + "/paths-info/" + Commit(fx.v2)
	post := func(ctype, body string) (*http.Response, []byte) {
		return fx.do("POST", u, map[string]string{"Content-Type": ctype}, body)
	}
	resp, b := post("application/json", `{"paths":["config.json","tokenizer","nope","tokenizer/","config.json","../x",""],"expand":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	var got []epEntry
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	fx.checkEntries("paths-info", got, []string{"config.json", "tokenizer"})
	for _, e := range got {
		if e.LastCommit == nil || e.LastCommit.ID != Commit(fx.v2) {
			t.Fatalf("expand=true: lastCommit %+v", e.LastCommit)
		}
	}
	// The Python client posts a form.
	form := url.Values{"paths": {"tokenizer/special/vocab.txt", "empty.txt"}, "expand": {"True"}}
	resp, b = post("application/x-www-form-urlencoded", form.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	got = nil
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	fx.checkEntries("paths-info form", got, []string{"tokenizer/special/vocab.txt", "empty.txt"})
	resp, b = post("application/json", `{"paths":[]}`)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("no paths: %s %s", resp.Status, b)
	}
	for _, bad := range [][2]string{{"application/json", `{"paths":"x"`}, {"text/plain", "paths=x"}} {
		resp, b = post(bad[0], bad[1])
		if resp.StatusCode != 400 {
			t.Fatalf("body %q: %s %s", bad[1], resp.Status, b)
		}
	}
	resp, b = fx.do("GET", u, nil, "")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET paths-info: %s (Allow %q) %s", resp.Status, resp.Header.Get("Allow"), b)
	}
	resp, b = fx.do("POST", "/api/models/nobody/none/paths-info/main", map[string]string{"Content-Type": "application/json"}, `{"paths":["a"]}`)
	epWantHubError(t, resp, b, 404, codeRepoNotFound)
}

func TestEndpointServesFiles(t *testing.T) {
	fx := newEPFixture(t)
	c2 := Commit(fx.v2)
	for p, data := range fx.files {
		for _, kind := range []string{"resolve", "raw"} {
			u := "/" + epRepo + "/" + kind + "/main/" + (&url.URL{Path: p}).EscapedPath()
			resp, b := fx.do("GET", u, nil, "")
			if resp.StatusCode != 200 || !bytes.Equal(b, data) {
				t.Fatalf("GET %s: %s, %d bytes, equal %v", u, resp.Status, len(b), bytes.Equal(b, data))
			}
			etag := `"` + epSHA256Hex(data) + `"`
			for k, v := range map[string]string{
				"ETag": etag, "X-Linked-Etag": etag, "X-Linked-Size": strconv.Itoa(len(data)),
				"X-Repo-Commit": c2, "Accept-Ranges": "bytes", "Content-Length": strconv.Itoa(len(data)),
				"Content-Type": "application/octet-stream",
			} {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf("GET %s: %s: %q, want %q", u, k, got, v)
				}
			}
			if resp.Header.Get("Content-Range") != "" || resp.Header.Get("Location") != "" {
				t.Fatalf("GET %s: Content-Range or Location on a whole file", u)
			}
		}
	}
	data := fx.files["model.safetensors"]
	size := len(data)
	u := "/" + epRepo + "/resolve/" + c2 + "/model.safetensors"
	for _, tc := range []struct {
		rng          string
		status       int
		from, to     int // bytes wanted: data[from:to]
		contentRange string
	}{
		{"bytes=0-0", 206, 0, 1, fmt.Sprintf("bytes 0-0/%d", size)},
		{"bytes=10-99", 206, 10, 100, fmt.Sprintf("bytes 10-99/%d", size)},
		{"bytes=2000000-", 206, 2000000, size, fmt.Sprintf("bytes 2000000-%d/%d", size-1, size)},
		{"bytes=-50", 206, size - 50, size, fmt.Sprintf("bytes %d-%d/%d", size-50, size-1, size)},
		{"bytes=5-" + strconv.Itoa(size+100), 206, 5, size, fmt.Sprintf("bytes 5-%d/%d", size-1, size)},
		{fmt.Sprintf("bytes=%d-", size), 416, 0, 0, fmt.Sprintf("bytes */%d", size)},
		{"bytes=0-1,5-6", 200, 0, size, ""},
	} {
		// The JavaScript client's first probe also asks for Xet file info.
		resp, b := fx.do("GET", u, map[string]string{"Range": tc.rng, "Accept": "application/vnd.xet-fileinfo+json, */*"}, "")
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange {
			t.Fatalf("Range %s: %s, Content-Range %q, want %d %q", tc.rng, resp.Status, resp.Header.Get("Content-Range"), tc.status, tc.contentRange)
		}
		if tc.status != 416 && (!bytes.Equal(b, data[tc.from:tc.to]) || resp.Header.Get("Content-Type") != "application/octet-stream") {
			t.Fatalf("Range %s: %d bytes of type %q, want data[%d:%d]", tc.rng, len(b), resp.Header.Get("Content-Type"), tc.from, tc.to)
		}
	}
	// HEAD: the headers, and not one read.
	reads := fx.models.reads.Load()
	for _, rng := range []string{"", "bytes=0-0"} {
		resp, b := fx.do("HEAD", u, map[string]string{"Range": rng}, "")
		if len(b) != 0 || resp.Header.Get("X-Linked-Size") != strconv.Itoa(size) || resp.Header.Get("X-Repo-Commit") != c2 {
			t.Fatalf("HEAD (Range %q): %s %v", rng, resp.Status, resp.Header)
		}
		if rng == "" && (resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(size)) {
			t.Fatalf("HEAD: %s, Content-Length %s", resp.Status, resp.Header.Get("Content-Length"))
		}
	}
	if n := fx.models.reads.Load(); n != reads {
		t.Fatalf("HEAD read the file %d times", n-reads)
	}
	resp, _ := fx.do("GET", u, map[string]string{"If-None-Match": `"` + epSHA256Hex(data) + `"`}, "")
	if resp.StatusCode != 304 {
		t.Fatalf("If-None-Match with the ETag: %s", resp.Status)
	}
	// An empty file: the probe learns its size from Content-Range.
	resp, b := fx.do("GET", "/"+epRepo+"/resolve/main/empty.txt", map[string]string{"Range": "bytes=0-0"}, "")
	if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("Content-Range") != "bytes */0" {
		t.Fatalf("empty file probe: %s, Content-Range %q", resp.Status, resp.Header.Get("Content-Range"))
	}
	// Many clients at once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			off := i * 1000
			req, _ := http.NewRequest("GET", fx.srv.URL+u, nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+300000))
			resp, err := fx.srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, data[off:off+300001]) {
				errs <- fmt.Errorf("range at %d: %v, %d bytes", off, err, len(b))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestEndpointErrors(t *testing.T) {
	fx := newEPFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/" + epRepo + "/resolve/main/nope.bin", 404, codeEntryNotFound},
		{"GET", "/" + epRepo + "/resolve/main/tokenizer", 404, codeEntryNotFound}, // a folder
		{"GET", "/nobody/none/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/" + epRepo + "/resolve/refs%2Fpr%2F1/config.json", 404, codeRevisionNotFound},
		{"GET", "/" + epRepo + "/resolve/v1.0/config.json", 404, codeRevisionNotFound},
		{"GET", "/" + epRepo + "/resolve/" + strings.Repeat("ab", 20) + "/config.json", 404, codeRevisionNotFound},
		{"GET", "/" + epRepo + "/resolve/" + content.SumCID(content.CodecDagCBOR, []byte("x")).String() + "/config.json", 404, codeRevisionNotFound},
		{"GET", "/p%21b/x/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/../x/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/a/b/c/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/" + strings.Repeat("a", 101) + "/x/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/api/models/" + epRepo + "/revision/main/extra", 404, codeRepoNotFound},
		{"GET", "/api/datasets/" + epRepo, 404, codeRepoNotFound},
		{"GET", "/datasets/" + epRepo + "/resolve/main/config.json", 404, codeRepoNotFound},
		{"GET", "/api/models/nobody/none", 404, codeRepoNotFound},
		{"GET", "/api/models/" + epRepo + "/revision/nobranch", 404, codeRevisionNotFound},
		{"GET", "/" + epRepo + "/resolve/main/a/%2E%2E/config.json", 400, ""},
		{"GET", "/" + epRepo + "/resolve/main/a%2F..%2Fconfig.json", 400, ""},
		{"GET", "/api/models/" + epRepo + "/tree/main/a//b", 400, ""},
		{"GET", "/" + epRepo + "/resolve/" + strings.Repeat("r", 257) + "/config.json", 400, ""},
		{"POST", "/" + epRepo + "/resolve/main/config.json", 405, ""},
		{"DELETE", "/api/models/" + epRepo, 405, ""},
		{"PUT", "/api/models/" + epRepo + "/tree/main", 405, ""},
	} {
		resp, b := fx.do(tc.method, tc.path, nil, "")
		if tc.code != "" {
			epWantHubError(t, resp, b, tc.status, tc.code)
			continue
		}
		var e struct{ Error string }
		if resp.StatusCode != tc.status || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Fatalf("%s %s: %s %s, want %d and {\"error\": ...}", tc.method, tc.path, resp.Status, b, tc.status)
		}
	}
	// A client that sends a malformed escape (Go's own will not).
	if _, herr := parseHubRoute("/" + epRepo + "/resolve/main/%ZZ"); herr == nil || herr.status != 400 {
		t.Fatalf("malformed escape: %v", herr)
	}
	// The revision is unescaped once, and named in the message.
	resp, _ := fx.do("GET", "/"+epRepo+"/resolve/refs%2Fpr%2F1/config.json", nil, "")
	if msg := resp.Header.Get("X-Error-Message"); !strings.Contains(msg, "refs/pr/1") {
		t.Fatalf("X-Error-Message %q does not name the revision refs/pr/1", msg)
	}
}

func TestEndpointInternalErrorsDoNotLeak(t *testing.T) {
	fx := newEPFixture(t)
	fx.models.manifestErr = errors.New("index /home/secret/index.db: disk on fire")
	fx.start() // a server started after the change sees it
	resp, b := fx.do("GET", "/api/models/"+epRepo, nil, "")
	if resp.StatusCode != 500 || bytes.Contains(b, []byte("secret")) || strings.Contains(resp.Header.Get("X-Error-Message"), "secret") {
		t.Fatalf("%s %s %v", resp.Status, b, resp.Header)
	}
	if !strings.Contains(fx.log.String(), "disk on fire") {
		t.Fatalf("the cause was not logged: %s", fx.log.String())
	}
}

// A file whose first read fails is an error status, not a 200 with
// nothing after it (the status waits for the first byte).
func TestEndpointFailedReadIsAnError(t *testing.T) {
	fx := newEPFixture(t)
	fx.models.readFail = "model.safetensors"
	fx.start() // a server started after the change sees it
	resp, err := fx.srv.Client().Get(fx.srv.URL + "/" + epRepo + "/resolve/main/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 500 || resp.Header.Get("X-Repo-Commit") != "" || resp.Header.Get("Content-Range") != "" {
		t.Fatalf("a file that cannot be read: %s %v %q", resp.Status, resp.Header, b)
	}
	if !strings.Contains(fx.log.String(), "bad chunk") {
		t.Fatalf("the failed read was not logged: %s", fx.log.String())
	}
}
