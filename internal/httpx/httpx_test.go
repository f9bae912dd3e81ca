package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
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
