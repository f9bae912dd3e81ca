package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:0", "[::1]:5001", "localhost:0", "127.0.0.2:80"} {
		if err := checkLoopback(a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"0.0.0.0:0", "[::]:0", "192.168.1.1:80", "10.0.0.1:1", "example.com:80", ":5001", "nonsense"} {
		if err := checkLoopback(a); err == nil {
			t.Errorf("%s accepted", a)
		}
	}
}

// Threat 20: the API answers only with the right token, refuses browsers,
// binds only loopback, and one home runs one daemon.
func TestDaemonAPI(t *testing.T) {
	home := Home{Dir: t.TempDir()}
	if _, err := home.Init(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bad := cfg
	bad.API = "0.0.0.0:0"
	if err := RunDaemon(ctx, home, bad, nil, nil); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("non-loopback API: err = %v", err)
	}

	dctx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- RunDaemon(dctx, home, cfg, nil, func(_ *Node, addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	if err := RunDaemon(ctx, home, cfg, nil, nil); !errors.Is(err, ErrDaemonRunning) {
		t.Fatalf("second daemon: err = %v", err)
	}
	st, err := os.Stat(home.TokenPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("API on %s", addr)
	}
	tok, _ := os.ReadFile(home.TokenPath())
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
	good := "Bearer " + trimToken(tok)
	for _, c := range []struct {
		auth, origin string
		want         int
	}{
		{"", "", 401}, {"Bearer wrong", "", 401}, {trimToken(tok), "", 401},
		{good, "http://evil.example", 403}, {good, "", 200},
	} {
		if got := status(c.auth, c.origin); got != c.want {
			t.Errorf("auth %q origin %q: %d, want %d", c.auth, c.origin, got, c.want)
		}
	}
	cl, err := Dial(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ID(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Get(ctx, GetRequest{CID: "not-a-cid", Dir: t.TempDir()}, nil); err == nil {
		t.Fatal("API accepted a malformed CID")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(home.APIPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("api file left after shutdown")
	}
	if _, err := Dial(ctx, home); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("dial after shutdown: %v", err)
	}
}
