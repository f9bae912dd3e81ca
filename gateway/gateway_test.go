package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// fakeStore serves an imported folder from memory: manifest blocks and
// chunks by CID, and files chunk by chunk, each chunk verified.
type fakeStore struct {
	m      *content.Manifest
	blocks map[cid.Cid][]byte
	files  [][]byte // file bytes, by manifest index
	// failRead, when set, makes ReadFile fail with it; failAt, when not
	// 0, makes it fail for reads from that offset on.
	failRead atomic.Pointer[error]
	failAt   atomic.Int64
}

func (s *fakeStore) Block(_ context.Context, c cid.Cid) ([]byte, error) {
	b, ok := s.blocks[c]
	if !ok {
		return nil, fmt.Errorf("block %s: %w", c, content.ErrNotFound)
	}
	return b, nil
}

func (s *fakeStore) Manifest(_ context.Context, root cid.Cid) (*content.Manifest, error) {
	if root != s.m.Root {
		return nil, fmt.Errorf("root %s: %w", root, content.ErrNotFound)
	}
	return s.m, nil
}

func (s *fakeStore) ReadFile(_ context.Context, root cid.Cid, i int, off, n int64, w io.Writer) error {
	if p := s.failRead.Load(); p != nil {
		return *p
	}
	if at := s.failAt.Load(); at != 0 && off >= at {
		return fmt.Errorf("chunk at %d: %w", off, content.ErrNotFound)
	}
	if root != s.m.Root || i < 0 || i >= len(s.m.Files) {
		return content.ErrNotFound
	}
	if off < 0 || n < 0 || off+n > int64(s.m.Files[i].Size) {
		return fmt.Errorf("range [%d, %d) outside file of %d bytes", off, off+n, s.m.Files[i].Size)
	}
	var at int64
	for _, c := range s.m.FileChunks(i) {
		end := at + int64(c.Len)
		if end > off && at < off+n {
			chunk := s.blocks[c.CID.Cid]
			if err := content.VerifyBlock(c.CID.Cid, chunk); err != nil {
				return err
			}
			lo, hi := max(off, at)-at, min(off+n, end)-at
			if _, err := w.Write(chunk[lo:hi]); err != nil {
				return err
			}
		}
		at = end
	}
	return nil
}

// newStore imports a test model folder (a multi-tensor safetensors file
// over 2 MiB, nested folders, an empty file, a name with a space) and
// returns a store over it.
func newStore(t *testing.T) *fakeStore {
	t.Helper()
	dir := t.TempDir()
	if _, err := testmodel.Folder(dir, 3, 7); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty.txt":         nil,
		"notes/read me.txt": []byte("hello gateway\n"),
		"big.bin":           testmodel.Bytes(5<<20+100, 9), // more than one read window
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	im, err := content.Import(context.Background(), dir, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeStore{m: im.M, blocks: map[cid.Cid][]byte{}}
	for _, b := range im.Blocks {
		s.blocks[b.CID] = b.Data
	}
	for i, f := range im.M.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		s.files = append(s.files, data)
		var at uint64
		for _, c := range im.M.FileChunks(i) {
			s.blocks[c.CID.Cid] = data[at : at+c.Len]
			at += c.Len
		}
	}
	if s.fileIndex("model.safetensors") < 0 || s.m.Files[s.fileIndex("model.safetensors")].Size <= 2<<20 {
		t.Fatal("test model lacks a safetensors file over 2 MiB")
	}
	return s
}

func (s *fakeStore) fileIndex(p string) int { return fileIndex(s.m, p) }

func newServer(t *testing.T) (*fakeStore, *httptest.Server) {
	t.Helper()
	st := newStore(t)
	srv := httptest.NewServer(New(st, nil))
	t.Cleanup(srv.Close)
	return st, srv
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

var rawAccept = map[string]string{"Accept": MediaRaw}

func TestRawBlock(t *testing.T) {
	st, srv := newServer(t)
	chunk := st.m.FileChunks(st.fileIndex("model.safetensors"))[1].CID.Cid
	for _, tc := range []struct {
		name string
		c    cid.Cid
		url  string
		hdr  map[string]string
	}{
		{"chunk by Accept", chunk, "/ipfs/" + chunk.String(), rawAccept},
		{"root block by format", st.m.Root, "/ipfs/" + st.m.Root.String() + "?format=raw", nil},
		{"root block, Accept in a list", st.m.Root, "/ipfs/" + st.m.Root.String(),
			map[string]string{"Accept": "text/html, application/vnd.ipld.raw;q=0.5, */*;q=0.1"}},
		{"format wins over Accept", chunk, "/ipfs/" + chunk.String() + "?format=raw", map[string]string{"Accept": "text/html"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "GET", srv.URL+tc.url, tc.hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got, err := tc.c.Prefix().Sum(body)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equals(tc.c) {
				t.Fatalf("body hashes to %s, want %s", got, tc.c)
			}
			want := map[string]string{
				"Content-Type":           MediaRaw,
				"X-Content-Type-Options": "nosniff",
				"ETag":                   `"` + tc.c.String() + `.raw"`,
				"Cache-Control":          "public, max-age=29030400, immutable",
				"Content-Length":         fmt.Sprint(len(body)),
				"Content-Disposition":    `attachment; filename=` + tc.c.String() + `.bin`,
			}
			for k, v := range want {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
		})
	}

	t.Run("HEAD", func(t *testing.T) {
		resp, body := do(t, "HEAD", srv.URL+"/ipfs/"+chunk.String(), rawAccept)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Fatalf("status %d, %d bytes of body", resp.StatusCode, len(body))
		}
		if cl := resp.Header.Get("Content-Length"); cl != fmt.Sprint(len(st.blocks[chunk])) {
			t.Fatalf("Content-Length %s, want %d", cl, len(st.blocks[chunk]))
		}
	})
	t.Run("If-None-Match", func(t *testing.T) {
		resp, _ := do(t, "GET", srv.URL+"/ipfs/"+chunk.String(),
			map[string]string{"Accept": MediaRaw, "If-None-Match": `"` + chunk.String() + `.raw"`})
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("status %d, want 304", resp.StatusCode)
		}
	})
	t.Run("probe", func(t *testing.T) {
		resp, body := do(t, "GET", srv.URL+"/ipfs/"+ProbeCID+"?format=raw", rawAccept)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestRawRefusals(t *testing.T) {
	st, srv := newServer(t)
	chunk := st.m.FileChunks(0)[0].CID.Cid
	unknown := content.SumCID(content.CodecRaw, []byte("nobody holds this"))
	sha512, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_512}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	dagpb, err := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	v0, err := cid.V0Builder{}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		url  string
		hdr  map[string]string
		want int
	}{
		{"no Accept", "/ipfs/" + chunk.String(), nil, http.StatusBadRequest},
		{"deserialized", "/ipfs/" + chunk.String(), map[string]string{"Accept": "text/html,*/*"}, http.StatusNotAcceptable},
		{"CAR by Accept", "/ipfs/" + chunk.String(), map[string]string{"Accept": MediaCAR}, http.StatusNotAcceptable},
		{"CAR by format", "/ipfs/" + chunk.String() + "?format=car", rawAccept, http.StatusNotAcceptable},
		{"raw with q=0", "/ipfs/" + chunk.String(), map[string]string{"Accept": MediaRaw + ";q=0"}, http.StatusNotAcceptable},
		{"not a CID", "/ipfs/notacid", rawAccept, http.StatusBadRequest},
		{"sha2-512", "/ipfs/" + sha512.String(), rawAccept, http.StatusBadRequest},
		{"dag-pb", "/ipfs/" + dagpb.String(), rawAccept, http.StatusBadRequest},
		{"CIDv0", "/ipfs/" + v0.String(), rawAccept, http.StatusBadRequest},
		{"unknown", "/ipfs/" + unknown.String(), rawAccept, http.StatusNotFound},
		{"unknown, HEAD", "/ipfs/" + unknown.String(), rawAccept, http.StatusNotFound},
		{"unknown, only-if-cached", "/ipfs/" + unknown.String(),
			map[string]string{"Accept": MediaRaw, "Cache-Control": "only-if-cached"}, http.StatusPreconditionFailed},
		{"path after CID", "/ipfs/" + st.m.Root.String() + "/config.json", rawAccept, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if strings.HasSuffix(tc.name, "HEAD") {
				method = "HEAD"
			}
			resp, body := do(t, method, srv.URL+tc.url, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
			if resp.Header.Get("Content-Type") == MediaRaw {
				t.Fatal("an error answered as a raw block")
			}
		})
	}
}

func fileURL(srv *httptest.Server, root cid.Cid, p string) string {
	return srv.URL + "/models/" + root.String() + "/" + (&url.URL{Path: p}).EscapedPath()
}

func TestModelFiles(t *testing.T) {
	st, srv := newServer(t)
	for i, f := range st.m.Files {
		t.Run(f.Path, func(t *testing.T) {
			resp, body := do(t, "GET", fileURL(srv, st.m.Root, f.Path), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if !bytes.Equal(body, st.files[i]) {
				t.Fatalf("body of %d bytes differs from the file's %d", len(body), len(st.files[i]))
			}
			for k, v := range map[string]string{
				"Content-Type":   "application/octet-stream",
				"ETag":           `"` + hex.EncodeToString(f.SHA256) + `"`,
				"Accept-Ranges":  "bytes",
				"Content-Length": fmt.Sprint(f.Size),
			} {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestModelRanges(t *testing.T) {
	st, srv := newServer(t)
	i := st.fileIndex("model.safetensors")
	data := st.files[i]
	size := int64(len(data))
	u := fileURL(srv, st.m.Root, "model.safetensors")

	for _, tc := range []struct {
		rng    string
		lo, hi int64 // inclusive
	}{
		{"bytes=0-99", 0, 99},
		{"bytes=1048570-1048600", 1048570, 1048600}, // across a chunk boundary
		{"bytes=2000000-", 2000000, size - 1},
		{"bytes=-100", size - 100, size - 1},
		{fmt.Sprintf("bytes=%d-%d", size-1, size+1000), size - 1, size - 1}, // end clamped
	} {
		t.Run(tc.rng, func(t *testing.T) {
			resp, body := do(t, "GET", u, map[string]string{"Range": tc.rng})
			if resp.StatusCode != http.StatusPartialContent {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if want := fmt.Sprintf("bytes %d-%d/%d", tc.lo, tc.hi, size); resp.Header.Get("Content-Range") != want {
				t.Fatalf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
			}
			if !bytes.Equal(body, data[tc.lo:tc.hi+1]) {
				t.Fatalf("range body of %d bytes differs", len(body))
			}
		})
	}

	t.Run("past the end", func(t *testing.T) {
		resp, body := do(t, "GET", u, map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)})
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if want := fmt.Sprintf("bytes */%d", size); resp.Header.Get("Content-Range") != want {
			t.Fatalf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		resp, body := do(t, "HEAD", u, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Fatalf("status %d, %d bytes of body", resp.StatusCode, len(body))
		}
		if resp.Header.Get("Content-Length") != fmt.Sprint(size) {
			t.Fatalf("Content-Length %q, want %d", resp.Header.Get("Content-Length"), size)
		}
	})
	t.Run("If-None-Match", func(t *testing.T) {
		resp, _ := do(t, "GET", u, map[string]string{"If-None-Match": `"` + hex.EncodeToString(st.m.Files[i].SHA256) + `"`})
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("status %d, want 304", resp.StatusCode)
		}
	})
}

func TestModelListingAndRefusals(t *testing.T) {
	st, srv := newServer(t)
	for _, suffix := range []string{"/", ""} {
		t.Run("listing "+suffix, func(t *testing.T) {
			resp, body := do(t, "GET", srv.URL+"/models/"+st.m.Root.String()+suffix, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var l Listing
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatal(err)
			}
			if l.Root != st.m.Root.String() || len(l.Files) != len(st.m.Files) {
				t.Fatalf("listing %+v", l)
			}
			for i, f := range st.m.Files {
				want := ListedFile{Path: f.Path, Size: f.Size, SHA256: hex.EncodeToString(f.SHA256)}
				if l.Files[i] != want {
					t.Fatalf("file %d: %+v, want %+v", i, l.Files[i], want)
				}
			}
		})
	}

	chunk := st.m.FileChunks(0)[0].CID.Cid
	other := content.SumCID(content.CodecDagCBOR, []byte("no such manifest"))
	for _, tc := range []struct {
		name string
		url  string
		want int
	}{
		{"unknown file", fileURL(srv, st.m.Root, "nope.bin"), http.StatusNotFound},
		{"folder, not a file", fileURL(srv, st.m.Root, "tokenizer"), http.StatusNotFound},
		{"unknown root", fileURL(srv, other, "config.json"), http.StatusNotFound},
		{"chunk as root", fileURL(srv, chunk, "config.json"), http.StatusBadRequest},
		{"bad root", srv.URL + "/models/xyz/config.json", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, "GET", tc.url, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
}

// A file whose bytes the node cannot read is answered with an error
// status, not a 200 cut short.
func TestModelReadFails(t *testing.T) {
	leakcheck.Check(t)
	st, srv := newServer(t)
	u := fileURL(srv, st.m.Root, "config.json")
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("chunk x: %w", content.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("/home/u/m/config.json: %w", content.ErrChanged), http.StatusNotFound},
		{fmt.Errorf("peer sent junk: %w", content.ErrHashMismatch), http.StatusBadGateway},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			st.failRead.Store(&tc.err)
			defer st.failRead.Store(nil)
			for _, rng := range []string{"", "bytes=5-10"} {
				resp, body := do(t, "GET", u, map[string]string{"Range": rng})
				if resp.StatusCode != tc.want {
					t.Fatalf("Range %q: status %d (%s), want %d", rng, resp.StatusCode, body, tc.want)
				}
				if resp.Header.Get("ETag") != "" || resp.Header.Get("Cache-Control") != "" {
					t.Fatalf("an error carries ETag %q, Cache-Control %q", resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
				}
				if strings.Contains(string(body), "/home/u") {
					t.Fatalf("error body leaks a local path: %s", body)
				}
			}
		})
	}
}

func TestGuard(t *testing.T) {
	st, srv := newServer(t)
	u := srv.URL + "/ipfs/" + st.m.Root.String()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"127.1.2.3", http.StatusOK},
		{"evil.example:" + port, http.StatusMisdirectedRequest},
		{"evil.example", http.StatusMisdirectedRequest},
		{"192.168.1.10:" + port, http.StatusMisdirectedRequest},
		{"localhost.evil.example", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.host, func(t *testing.T) {
			resp, body := do(t, "GET", u, map[string]string{"Host": tc.host, "Accept": MediaRaw})
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		t.Run(m, func(t *testing.T) {
			resp, body := do(t, m, u, rawAccept)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d (%s), want 405", resp.StatusCode, body)
			}
			if resp.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
}

// A request from a non-loopback connection is not held to a loopback
// Host: the rule guards against DNS rebinding onto 127.0.0.1 only.
func TestGuardOffLoopback(t *testing.T) {
	st := newStore(t)
	h := New(st, nil)
	req := httptest.NewRequest("GET", "/ipfs/"+st.m.Root.String()+"?format=raw", nil)
	req.Host = "gateway.lan:8080"
	req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey,
		&net.TCPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 8080}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// Without a known local address the rule applies.
	req = httptest.NewRequest("GET", "/ipfs/"+st.m.Root.String()+"?format=raw", nil)
	req.Host = "gateway.lan:8080"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMisdirectedRequest {
		t.Fatalf("status %d without a local address, want 421", rec.Code)
	}
}

// A read that fails after the first bytes were sent ends the reply short
// of its Content-Length: the client sees a truncated body, not a whole one.
func TestModelReadFailsMidBody(t *testing.T) {
	st, srv := newServer(t)
	i := st.fileIndex("big.bin")
	size := int64(st.m.Files[i].Size)
	st.failAt.Store(4 << 20)
	req, err := http.NewRequest("GET", fileURL(srv, st.m.Root, "big.bin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, size)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %d of %d bytes, err %v; want io.ErrUnexpectedEOF", len(body), size, err)
	}
	if int64(len(body)) >= size || !bytes.Equal(body, st.files[i][:len(body)]) {
		t.Fatalf("truncated body of %d bytes is not a prefix of the file", len(body))
	}
}
