package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/api"
	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
	"github.com/shoal-p2p/shoal/home"
	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// Threat 20: the API answers only with the right token, refuses browsers,
// binds only loopback, and one home runs one daemon.
func TestDaemonAPI(t *testing.T) {
	leakcheck.Check(t) // a daemon started and stopped, API round trips
	hm := home.Home{Dir: t.TempDir()}
	if _, err := hm.Init(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.FindTimeout = home.Duration(time.Second) // a root nobody holds is given up soon
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bad := cfg
	bad.API = "0.0.0.0:0"
	if err := RunDaemon(ctx, hm, bad, nil, nil); !errors.Is(err, home.ErrNotLoopback) {
		t.Fatalf("non-loopback API: err = %v", err)
	}

	dctx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- RunDaemon(dctx, hm, cfg, nil, func(_ *Node, addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	if err := RunDaemon(ctx, hm, cfg, nil, nil); !errors.Is(err, ErrDaemonRunning) {
		t.Fatalf("second daemon: err = %v", err)
	}
	st, err := os.Stat(hm.TokenPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("API on %s", addr)
	}
	tok, _ := os.ReadFile(hm.TokenPath())
	status := func(auth, origin string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/id", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := "Bearer " + strings.TrimSpace(string(tok))
	for _, c := range []struct {
		auth, origin string
		want         int
	}{
		{"", "", 401}, {"Bearer wrong", "", 401}, {strings.TrimSpace(string(tok)), "", 401},
		{good, "http://evil.example", 403}, {good, "", 200},
	} {
		if got := status(c.auth, c.origin); got != c.want {
			t.Errorf("auth %q origin %q: %d, want %d", c.auth, c.origin, got, c.want)
		}
	}
	cl, err := Dial(ctx, hm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ID(ctx); err != nil {
		t.Fatal(err)
	}
	// Typed errors survive the API: a request without a root is a bad
	// request, and a root nobody holds is fetch.ErrNoProviders, as in
	// process.
	if _, err := cl.Get(ctx, api.GetRequest{Dir: t.TempDir()}, nil); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("get without a root: %v, want api.ErrBadRequest", err)
	}
	nobody := content.SumCID(content.CodecDagCBOR, []byte("nobody holds this"))
	_, err = cl.Get(ctx, api.GetRequest{Root: nobody, Dir: filepath.Join(t.TempDir(), "x")}, nil)
	if !errors.Is(err, fetch.ErrNoProviders) {
		t.Fatalf("get of a root nobody holds: %v, want fetch.ErrNoProviders", err)
	}
	if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != "no_providers" {
		t.Fatalf("error code: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hm.APIPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("api file left after shutdown")
	}
	if _, err := Dial(ctx, hm); !errors.Is(err, api.ErrNoDaemon) {
		t.Fatalf("dial after shutdown: %v", err)
	}
}

// startDaemon runs a daemon on a fresh home until the test ends and
// returns the home and the API address.
func startDaemon(t *testing.T) (home.Home, string) {
	t.Helper()
	hm := home.Home{Dir: t.TempDir()}
	if _, err := hm.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, hm, testConfig(), nil, func(_ *Node, addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		stop()
		t.Fatal(err)
	case <-time.After(time.Minute):
		stop()
		t.Fatal("daemon did not start")
	}
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(time.Minute):
			t.Error("daemon did not stop")
		}
	})
	return hm, addr
}

// closedWithin reports whether the server closes conn within d (reading
// and discarding anything it sends first).
func closedWithin(conn net.Conn, d time.Duration) error {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if err == nil {
		return nil // EOF
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("still open after %s", d)
	}
	return nil // reset: closed too
}

// Threat 29: idle connections are closed (after a request, or with no
// request at all), and a request whose Host is not a loopback name or
// address is refused (DNS rebinding); the typed client still works.
func TestAPIIdleAndHost(t *testing.T) {
	old := api.Limits
	api.Limits.Header, api.Limits.Idle = 300*time.Millisecond, 300*time.Millisecond
	defer func() { api.Limits = old }()
	hm, addr := startDaemon(t)
	tok, _ := os.ReadFile(hm.TokenPath())
	good := "Bearer " + strings.TrimSpace(string(tok))

	// A kept-alive connection after a request, and one that never sends
	// anything: both closed by the server.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/id HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n\r\n", addr, good)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %d close=%v", resp.StatusCode, resp.Close)
	}
	if err := closedWithin(conn, 5*time.Second); err != nil {
		t.Errorf("idle kept-alive connection: %v", err)
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := closedWithin(silent, 5*time.Second); err != nil {
		t.Errorf("connection that sends nothing: %v", err)
	}

	_, port, _ := net.SplitHostPort(addr)
	status := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/id", nil)
		req.Host = host
		req.Header.Set("Authorization", good)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, h := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.evil.example:" + port,
		"localhost.evil.example", "192.168.1.1:" + port, "0.0.0.0:" + port, "[fe80::1]:" + port} {
		if got := status(h); got != http.StatusMisdirectedRequest && got != http.StatusForbidden {
			t.Errorf("Host %q: %d, want refused", h, got)
		}
	}
	for _, h := range []string{addr, "localhost:" + port, "LocalHost", "127.0.0.1", "127.1.2.3:80", "[::1]:" + port, "[::1]"} {
		if got := status(h); got != 200 {
			t.Errorf("Host %q: %d, want 200", h, got)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := Dial(ctx, hm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Status(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the client's kept-alive connection is closed meanwhile
	if _, err := cl.ID(ctx); err != nil {
		t.Fatalf("typed client after its idle connection closed: %v", err)
	}
}

// Every refused request is answered before the stream starts, with a
// status that says so (not a 200 with an error event), and its code; a
// body with text after the request object is refused too.
func TestAPIRefusalsHaveStatus(t *testing.T) {
	hm, addr := startDaemon(t)
	tok, _ := os.ReadFile(hm.TokenPath())
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	root := content.SumCID(content.CodecDagCBOR, []byte("r")).String()
	chunk := content.SumCID(content.CodecRaw, []byte("c")).String()
	for _, c := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/get", `{"root":"` + root + `","dir":"rel/dir"}`, 400, "bad_request"},
		{"/v1/get", `{"dir":"/x"}`, 400, "bad_request"},
		{"/v1/get", `{"root":"` + root + `","dir":"/tmp/x"} trailing`, 400, "bad_request"},
		{"/v1/get", `{"root":"` + chunk + `","dir":"/tmp/x"}`, 422, "not_a_root"},
		{"/v1/verify", `{"root":"` + root + `"}`, 404, "not_found"},
		{"/v1/add", `{"path":"rel"}`, 400, "bad_request"},
	} {
		status, body := post(c.path, c.body)
		if status != c.status || !strings.Contains(body, `"code":"`+c.code+`"`) || strings.Contains(body, `"event"`) {
			t.Errorf("%s %s: %d %s, want %d with code %s", c.path, c.body, status, body, c.status, c.code)
		}
	}
}
