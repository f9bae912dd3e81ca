package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/fetch"
)

// ErrNoDaemon reports that no daemon runs on a home.
var ErrNoDaemon = errors.New("no daemon running")

// Client is the typed client of a daemon's local API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// Dial finds the daemon of a home through its api and api.token files and
// checks that it answers. It fails with ErrNoDaemon when none runs.
func Dial(ctx context.Context, h Home) (*Client, error) {
	addr, err := os.ReadFile(h.APIPath())
	if err != nil {
		return nil, ErrNoDaemon
	}
	tok, err := os.ReadFile(h.TokenPath())
	if err != nil {
		return nil, fmt.Errorf("daemon API token: %w", err)
	}
	c := &Client{base: "http://" + strings.TrimSpace(string(addr)), token: trimToken(tok), hc: &http.Client{Transport: apiTransport}}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.ID(pctx); err != nil {
		var he *HTTPError
		if errors.As(err, &he) {
			return nil, err
		}
		return nil, ErrNoDaemon
	}
	return c, nil
}

// apiTransport talks to a daemon on loopback: never through a proxy, and
// dropping idle connections well before the daemon would close them (a
// request sent on a connection the daemon is closing would fail).
var apiTransport = &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 4,
	IdleConnTimeout:     apiLimits.idle / 2,
}

// HTTPError is a non-2xx reply of the API.
type HTTPError struct {
	Code int
	Msg  string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("daemon API: %d %s", e.Code, e.Msg) }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &HTTPError{Code: resp.StatusCode, Msg: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// stream posts body and reads NDJSON events, passing progress on and
// decoding the result into out.
func (c *Client) stream(ctx context.Context, path string, body any, progress func(fetch.Progress), out any) error {
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("daemon API: %w", err)
		}
		switch e.Event {
		case "progress":
			if progress != nil && e.Progress != nil {
				progress(*e.Progress)
			}
		case "error":
			return errors.New(content.Escape(e.Error))
		case "result":
			return json.Unmarshal(e.Result, out)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("daemon API: reply ended without a result")
}

// ID asks the daemon who it is.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var info IDInfo
	return info, c.getJSON(ctx, "/v1/id", &info)
}

// Status asks the daemon where it stands.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.getJSON(ctx, "/v1/status", &st)
}

// Ls lists the held roots.
func (c *Client) Ls(ctx context.Context) ([]content.RootInfo, error) {
	var out []content.RootInfo
	return out, c.getJSON(ctx, "/v1/ls", &out)
}

// AddRequest is what to add: a path (absolute), and whether to add what
// symlinks in it point at outside it.
type AddRequest = addRequest

// Add asks the daemon to import a file or folder and announce it.
func (c *Client) Add(ctx context.Context, req AddRequest, progress func(fetch.Progress)) (*AddResult, error) {
	var out AddResult
	return &out, c.stream(ctx, "/v1/add", req, progress, &out)
}

// GetRequest is what to fetch: a CID, or a name (keyID/name) to resolve;
// Publisher, if set, must have signed the root.
type GetRequest = getRequest

// Get asks the daemon to fetch a root or a name into dir (absolute).
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(fetch.Progress)) (*GetResult, error) {
	var out GetResult
	return &out, c.stream(ctx, "/v1/get", req, progress, &out)
}

// Publish asks the daemon to sign and publish a record.
func (c *Client) Publish(ctx context.Context, key, name, root string, ttl time.Duration) (*PublishResult, error) {
	var out PublishResult
	return &out, c.stream(ctx, "/v1/publish", publishRequest{Key: key, Name: name, CID: root, TTL: ttl}, nil, &out)
}

// Resolve asks the daemon what a publisher's name points to.
func (c *Client) Resolve(ctx context.Context, keyID, name string) (*Signer, error) {
	var out Signer
	return &out, c.stream(ctx, "/v1/resolve", resolveRequest{Publisher: keyID, Name: name}, nil, &out)
}

// Verify asks the daemon to re-hash a held root.
func (c *Client) Verify(ctx context.Context, root string, progress func(fetch.Progress)) (*VerifyReport, error) {
	var out VerifyReport
	return &out, c.stream(ctx, "/v1/verify", verifyRequest{CID: root}, progress, &out)
}

// Files lists the files of a held root.
func (c *Client) Files(ctx context.Context, root string) ([]content.FileInfo, error) {
	var out []content.FileInfo
	return out, c.getJSON(ctx, "/v1/files?root="+root, &out)
}
