package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A server on loopback answers loopback names and refuses any other Host
// (DNS rebinding), closing the connection.
func TestLoopbackOnly(t *testing.T) {
	srv := httptest.NewServer(LoopbackOnly("the test server", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	for host, want := range map[string]int{"": 200, "localhost:1": 200, "127.0.0.2": 200, "[::1]:80": 200,
		"evil.example": 421, "evil.example:80": 421, "10.0.0.1": 421, "localhost.evil.example": 421} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// A request a web page of another site made is refused (an <img> could
// have the node fetch any model); clients that are not browsers and
// pages of the node's own loopback origin are answered.
func TestGuardRefusesOtherSites(t *testing.T) {
	srv := httptest.NewServer(Guard("the test server", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	for _, c := range []struct {
		hdr  map[string]string
		want int
	}{
		{nil, 200},
		{map[string]string{"Sec-Fetch-Mode": "cors"}, 200}, // Node's fetch
		{map[string]string{"Origin": "http://127.0.0.1:8386", "Sec-Fetch-Site": "same-origin"}, 200},
		{map[string]string{"Origin": "https://evil.example"}, 403},
		{map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%v: %d, want %d", c.hdr, resp.StatusCode, c.want)
		}
	}
}

// A request for several ranges gets the whole file; the last 0 bytes is
// unsatisfiable (416), not a 206 of an impossible range.
func TestOneRange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		OneRange(r)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
	}))
	defer srv.Close()
	for rg, want := range map[string]int{"bytes=0-0,2-2,4-4": 200, "bytes=-0": 416, "bytes= -0": 416, "bytes=2-3": 206, "bytes=-3": 206} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Range", rg)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Range %q: %d, want %d", rg, resp.StatusCode, want)
		}
	}
}
