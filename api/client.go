package api

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

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// Client is the typed client of a daemon's local API. It is a Service.
type Client struct {
	base  string
	token string
	codes Codes
	hc    *http.Client
}

var _ Service = (*Client)(nil)

// Dial finds a daemon through its address and token files and checks
// that it answers. It fails with ErrNoDaemon when none runs. codes maps
// the error codes the daemon sends back to their sentinels.
func Dial(ctx context.Context, addrFile, tokenFile string, codes Codes) (*Client, error) {
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		return nil, ErrNoDaemon
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("daemon API token: %w", err)
	}
	c := &Client{base: "http://" + strings.TrimSpace(string(addr)), token: strings.TrimSpace(string(tok)),
		codes: codes, hc: &http.Client{Transport: transport}}
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

// transport talks to a daemon on loopback: never through a proxy, and
// dropping idle connections well before the daemon would close them (a
// request sent on a connection the daemon is closing would fail).
var transport = &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 4,
	IdleConnTimeout:     Limits.Idle / 2,
}

// fail turns an error reply into an error: with its sentinel when the
// code names one.
func (c *Client) fail(msg, code string) error {
	return &Error{Code: code, Message: content.Escape(msg), err: c.codes.sentinel(code)}
}

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
		var er errorReply
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Unmarshal(msg, &er) == nil && er.Error != "" {
			return nil, c.fail(er.Error, er.Code)
		}
		return nil, &HTTPError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(msg))}
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
func stream[R any](ctx context.Context, c *Client, path string, body any, progress func(Progress)) (*R, error) {
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("daemon API: %w", err)
		}
		switch e.Event {
		case "progress":
			if progress != nil && e.Progress != nil {
				progress(*e.Progress)
			}
		case "error":
			return nil, c.fail(e.Error, e.Code)
		case "result":
			out := new(R)
			if err := json.Unmarshal(e.Result, out); err != nil {
				return nil, fmt.Errorf("daemon API: %w", err)
			}
			if e.Error != "" {
				return out, c.fail(e.Error, e.Code)
			}
			return out, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("daemon API: reply ended without a result")
}

// ID asks the daemon who it is.
func (c *Client) ID(ctx context.Context) (*IDInfo, error) {
	var info IDInfo
	return &info, c.getJSON(ctx, "/v1/id", &info)
}

// Status asks the daemon where it stands.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.getJSON(ctx, "/v1/status", &st)
}

// Ls lists the held roots.
func (c *Client) Ls(ctx context.Context) ([]content.RootInfo, error) {
	var out []content.RootInfo
	return out, c.getJSON(ctx, "/v1/ls", &out)
}

// Files lists the files of a held root.
func (c *Client) Files(ctx context.Context, root cid.Cid) ([]content.FileInfo, error) {
	var out []content.FileInfo
	return out, c.getJSON(ctx, "/v1/files?root="+root.String(), &out)
}

// Add asks the daemon to import a file or folder and announce it.
func (c *Client) Add(ctx context.Context, req AddRequest, progress func(Progress)) (*AddResult, error) {
	return stream[AddResult](ctx, c, "/v1/add", req, progress)
}

// Get asks the daemon to fetch a root or a name into a folder.
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(Progress)) (*GetResult, error) {
	return stream[GetResult](ctx, c, "/v1/get", req, progress)
}

// Verify asks the daemon to re-hash a held root.
func (c *Client) Verify(ctx context.Context, root cid.Cid, progress func(Progress)) (*VerifyReport, error) {
	return stream[VerifyReport](ctx, c, "/v1/verify", verifyRequest{Root: root}, progress)
}

// Publish asks the daemon to sign and publish a record.
func (c *Client) Publish(ctx context.Context, req PublishRequest) (*PublishResult, error) {
	return stream[PublishResult](ctx, c, "/v1/publish", req, nil)
}

// Resolve asks the daemon what a publisher's name points to.
func (c *Client) Resolve(ctx context.Context, req ResolveRequest) (*Signer, error) {
	return stream[Signer](ctx, c, "/v1/resolve", req, nil)
}

// Inspect asks the daemon to describe a model.
func (c *Client) Inspect(ctx context.Context, req InspectRequest) (*content.ModelView, error) {
	return stream[content.ModelView](ctx, c, "/v1/inspect", req, nil)
}

// Pin asks the daemon to keep a root, fetching it into its store if need be.
func (c *Client) Pin(ctx context.Context, req PinRequest, progress func(Progress)) (*PinResult, error) {
	return stream[PinResult](ctx, c, "/v1/pin", req, progress)
}

// Unpin asks the daemon to let gc collect a root.
func (c *Client) Unpin(ctx context.Context, req PinRequest) (*UnpinResult, error) {
	return stream[UnpinResult](ctx, c, "/v1/unpin", req, nil)
}

// Pins lists the daemon's pins.
func (c *Client) Pins(ctx context.Context) ([]content.Pin, error) {
	var out []content.Pin
	return out, c.getJSON(ctx, "/v1/pins", &out)
}

// GC asks the daemon to collect what is neither pinned nor being fetched.
func (c *Client) GC(ctx context.Context, req GCRequest) (*GCReport, error) {
	return stream[GCReport](ctx, c, "/v1/gc", req, nil)
}

// Follow asks the daemon to follow a publisher.
func (c *Client) Follow(ctx context.Context, req FollowRequest) (*FollowInfo, error) {
	return stream[FollowInfo](ctx, c, "/v1/follow", req, nil)
}

// Unfollow asks the daemon to stop following a publisher.
func (c *Client) Unfollow(ctx context.Context, req FollowRequest) (*FollowInfo, error) {
	return stream[FollowInfo](ctx, c, "/v1/unfollow", req, nil)
}

// Follows lists the publishers the daemon follows.
func (c *Client) Follows(ctx context.Context) ([]FollowInfo, error) {
	var out []FollowInfo
	return out, c.getJSON(ctx, "/v1/follows", &out)
}

// Scrub asks the daemon to re-hash held roots and heal what it can.
func (c *Client) Scrub(ctx context.Context, req ScrubRequest, progress func(Progress)) (*ScrubReport, error) {
	return stream[ScrubReport](ctx, c, "/v1/scrub", req, progress)
}
