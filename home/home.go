// Package home is a node's home folder: the identity key, config.toml,
// the index's path, publisher keys, trust petnames, remembered peers, the
// fetch-log key, and, while a daemon runs, its API address and token.
package home

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"

	"github.com/shoal-p2p/shoal/internal/fsx"
)

// Home is a node's folder: identity key, config, index and, while a daemon
// runs, its API address and token.
type Home struct{ Dir string }

// Paths inside a home.
func (h Home) KeyPath() string    { return filepath.Join(h.Dir, "identity.key") }
func (h Home) ConfigPath() string { return filepath.Join(h.Dir, "config.toml") }

// legacyConfigPath is where homes kept their config before config.toml:
// it is migrated (and renamed config.json.migrated) on first read.
func (h Home) legacyConfigPath() string { return filepath.Join(h.Dir, "config.json") }
func (h Home) IndexPath() string        { return filepath.Join(h.Dir, "index.db") }
func (h Home) APIPath() string          { return filepath.Join(h.Dir, "api") }
func (h Home) TokenPath() string        { return filepath.Join(h.Dir, "api.token") }
func (h Home) PeersPath() string        { return filepath.Join(h.Dir, "peers.json") }
func (h Home) StorePath() string        { return filepath.Join(h.Dir, "store") }
func (h Home) DHTPath() string          { return filepath.Join(h.Dir, "dht") }

// Config is a node's configuration, stored as config.toml in its home.
type Config struct {
	// Listen are the multiaddrs the libp2p host listens on.
	Listen []string `json:"listen" toml:"listen" comment:"Multiaddrs the daemon listens on (commands without a daemon listen on any free port)."`
	// Bootstrap are multiaddrs (with /p2p/ID) of peers to join the DHT
	// through. Empty by default: Shoal contacts no public network unless
	// told to.
	Bootstrap []string `json:"bootstrap" toml:"bootstrap" comment:"Peers to join the DHT through, multiaddrs ending in /p2p/ID. Empty: Shoal contacts no public network unless told to."`
	// DHTMode is "auto" (the LAN DHT answers queries, the WAN DHT answers
	// once AutoNAT finds the node publicly reachable), "server" (both
	// answer: for mirrors) or "client" (neither answers).
	DHTMode string `json:"dht_mode" toml:"dht_mode" comment:"'auto' (the LAN DHT serves; the WAN DHT serves once AutoNAT finds this node public), 'server' (both serve: mirrors) or 'client'."`
	// MDNS finds Shoal peers on the local network by multicast DNS.
	MDNS bool `json:"mdns" toml:"mdns" comment:"Find Shoal peers on the local network by multicast DNS."`
	// AutoNAT asks peers whether this node is reachable, and answers
	// them in turn (AutoNAT v1 and v2).
	AutoNAT bool `json:"autonat" toml:"autonat" comment:"Ask peers whether this node is reachable, and answer them (AutoNAT v1 and v2)."`
	// HolePunching upgrades relayed connections to direct ones (DCUtR).
	HolePunching bool `json:"hole_punching" toml:"hole_punching" comment:"Turn relayed connections into direct ones (DCUtR)."`
	// AutoRelay reserves a slot on a bootstrap peer that runs a relay
	// service when this node is not reachable, and advertises it.
	AutoRelay bool `json:"auto_relay" toml:"auto_relay" comment:"When unreachable, reserve a slot on a bootstrap peer that relays, and advertise it."`
	// PortMapping asks the home router to forward a port (UPnP, NAT-PMP).
	PortMapping bool `json:"port_mapping" toml:"port_mapping" comment:"Ask the home router to forward a port (UPnP, NAT-PMP)."`
	// Reachability is "auto" (AutoNAT decides), or "public" / "private"
	// to state it: a mirror on a public address says "public" so that it
	// serves the WAN DHT and its relay from the start, without waiting
	// for enough peers to confirm it.
	Reachability string `json:"reachability" toml:"reachability" comment:"'auto' (AutoNAT decides), 'public' or 'private': a mirror on a public address says 'public' to serve the WAN DHT and its relay from the start."`
	// RelayService relays connections for peers behind NAT, once this
	// node is publicly reachable (for mirrors).
	RelayService bool `json:"relay_service" toml:"relay_service" comment:"Relay connections for peers behind NAT once this node is public (mirrors)."`
	// RelayData lifts the relay service's per-connection limits (128 KiB
	// each way, 2 minutes) so that whole models may cross it. Off: a
	// relay carries hole punching, have-maps and manifests, never a
	// model.
	RelayData bool `json:"relay_data" toml:"relay_data" comment:"Let whole models cross the relay (lifts its 128 KiB / 2 minute limits). Off: it carries hole punching, have-maps and manifests only."`
	// API is the loopback host:port of the daemon's HTTP API; port 0 picks
	// a free one (the CLI finds it through the home).
	API string `json:"api" toml:"api" comment:"Loopback host:port of the local API; port 0 picks a free one (the CLI finds it through the home)."`
	// Metrics, if set, is the host:port the daemon serves Prometheus
	// metrics on (/metrics); a bare ":port" means loopback. Off when
	// empty.
	Metrics string `json:"metrics" toml:"metrics" comment:"host:port to serve Prometheus metrics on (/metrics); ':9464' means loopback. Off when empty."`
	// HFEndpoint, if set, is the loopback host:port of the Hugging Face
	// Hub-compatible read API (point HF_ENDPOINT at it). Off when empty.
	HFEndpoint string `json:"hf_endpoint" toml:"hf_endpoint" comment:"Loopback host:port of the Hugging Face Hub-compatible read API (HF_ENDPOINT=http://HOST:PORT); ':8385' means loopback. Off when empty."`
	// Gateway, if set, is the loopback host:port of the HTTP gateway
	// (/ipfs/CID raw blocks, /models/CID/PATH files). Off when empty.
	Gateway string `json:"gateway" toml:"gateway" comment:"Loopback host:port of the HTTP gateway (/ipfs/CID raw blocks, /models/CID/PATH files); ':8386' means loopback. Off when empty."`
	// FindTimeout bounds the search for providers of a root.
	FindTimeout Duration `json:"find_timeout" toml:"find_timeout" comment:"How long a fetch looks for sources before giving up."`
	// RequestTimeout bounds how long a peer may deliver (almost) nothing
	// while requests to it are outstanding; it runs from when a request
	// is sent, not while it waits behind others on a slow link.
	RequestTimeout Duration `json:"request_timeout" toml:"request_timeout" comment:"How long a peer may deliver nothing while requests to it are outstanding."`
	// MaxUpload and MaxDownload cap the bytes this node sends and receives
	// over the exchange protocol, e.g. "50MB/s"; "0" or empty: no cap.
	MaxUpload   string `json:"max_upload" toml:"max_upload" comment:"Cap on bytes sent, e.g. '50MB/s' or '400Mbit/s'; '0': none. Reloaded by SIGHUP."`
	MaxDownload string `json:"max_download" toml:"max_download" comment:"Cap on bytes received, as max_upload. Reloaded by SIGHUP."`
	// StorageMax bounds the bytes in the node's store (what it fetches
	// for itself: pins of roots it did not hold, followed publishers'
	// models), e.g. "500GB"; a fetch that would pass it is refused up
	// front. "0" or empty: no bound. Folders users add or fetch into are
	// theirs, and not counted.
	StorageMax string `json:"storage_max" toml:"storage_max" comment:"Disk budget of the node's store (pins of models it did not hold, followed publishers' models), e.g. '500GB'; '0': none. Folders you add or fetch into are not counted."`
	// FollowCheck is how often a daemon asks the DHT for the names of the
	// publishers it follows (gossip brings new records within seconds;
	// this catches what gossip missed).
	FollowCheck Duration `json:"follow_check" toml:"follow_check" comment:"How often a daemon asks the DHT for the names of the publishers it follows."`
	// ScrubInterval is how often a daemon re-hashes everything it holds
	// (shoal scrub): "0" is never; a mirror might say "168h".
	ScrubInterval Duration `json:"scrub_interval" toml:"scrub_interval" comment:"How often a daemon re-hashes everything it holds (shoal scrub); '0s': never. A mirror might say '168h'."`
	// ConnsPerIP bounds the connections from one IP address (IPv4; an
	// IPv6 /56): many peer IDs from one machine get no more. Loopback is
	// not bounded.
	ConnsPerIP int `json:"conns_per_ip" toml:"conns_per_ip" comment:"Connections accepted from one IP address (an IPv6 /56); loopback is not bounded."`
	// MaxConns bounds the node's connections in all (0: go-libp2p's
	// default, scaled to the machine's memory and file descriptors).
	MaxConns int `json:"max_conns" toml:"max_conns" comment:"Connections in all; 0: go-libp2p's default, scaled to memory and file descriptors."`
}

// Duration is a time.Duration written as text ("30s") in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// MarshalText writes the duration as text (for config.toml).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// UnmarshalJSON reads "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// DefaultConfig is the configuration a new home gets.
func DefaultConfig() Config {
	return Config{
		Listen:         []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		Bootstrap:      []string{},
		DHTMode:        "auto",
		MDNS:           true,
		AutoNAT:        true,
		HolePunching:   true,
		AutoRelay:      true,
		PortMapping:    true,
		Reachability:   "auto",
		API:            "127.0.0.1:0",
		Metrics:        "",
		FindTimeout:    Duration(30 * time.Second),
		RequestTimeout: Duration(30 * time.Second),
		MaxUpload:      "0",
		MaxDownload:    "0",
		StorageMax:     "0",
		FollowCheck:    Duration(10 * time.Minute),
		ConnsPerIP:     8,
		ScrubInterval:  0,
		MaxConns:       0,
	}
}

// Validate checks a configuration.
func (c Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("config: no listen address")
	}
	for _, a := range c.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("config: listen %q: %w", a, err)
		}
	}
	if _, err := ParseBootstrap(c.Bootstrap); err != nil {
		return err
	}
	switch c.DHTMode {
	case "server", "client", "auto":
	default:
		return fmt.Errorf("config: dht_mode %q (want server, client or auto)", c.DHTMode)
	}
	switch c.Reachability {
	case "auto", "public", "private":
	default:
		return fmt.Errorf("config: reachability %q (want auto, public or private)", c.Reachability)
	}
	if err := CheckLoopback(c.API); err != nil {
		return err
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return fmt.Errorf("config: metrics %q: want host:port, e.g. 127.0.0.1:9464: %w", c.Metrics, err)
		}
	}
	for key, addr := range map[string]string{"hf_endpoint": c.HFEndpoint, "gateway": c.Gateway} {
		if addr == "" {
			continue
		}
		if CheckLoopback(LoopbackDefault(addr)) != nil {
			return fmt.Errorf("config: %s %q: it serves on a loopback address only (put a reverse proxy in front to serve others)", key, addr)
		}
	}
	if c.FindTimeout <= 0 || c.RequestTimeout <= 0 {
		return errors.New("config: timeouts must be positive")
	}
	if _, err := ParseRate(c.MaxUpload); err != nil {
		return fmt.Errorf("config: max_upload: %w", err)
	}
	if _, err := ParseRate(c.MaxDownload); err != nil {
		return fmt.Errorf("config: max_download: %w", err)
	}
	if _, err := ParseSize(c.StorageMax); err != nil {
		return fmt.Errorf("config: storage_max: %w", err)
	}
	if c.ScrubInterval < 0 || (c.ScrubInterval > 0 && c.ScrubInterval < Duration(time.Minute)) {
		return errors.New("config: scrub_interval must be 0 (never) or at least 1m")
	}
	if c.ConnsPerIP < 1 {
		return errors.New("config: conns_per_ip must be at least 1")
	}
	if c.MaxConns < 0 {
		return errors.New("config: max_conns must be 0 (automatic) or more")
	}
	if c.FollowCheck < Duration(time.Second) {
		return errors.New("config: follow_check must be at least 1s")
	}
	return nil
}

// ShortLived is the configuration of a node that runs for one command
// (get, resolve, publish without a daemon): it asks the DHT but does not
// answer it, maps no port, takes no relay slot and relays for nobody. It
// provides nothing either (it has no announcer), so it leaves no provider
// records behind that outlive it. It still finds LAN peers by mDNS and
// punches holes to peers behind NAT.
func (c Config) ShortLived() Config {
	c.DHTMode = "client"
	c.PortMapping, c.AutoRelay, c.RelayService = false, false, false
	return c
}

// ParseBootstrap parses bootstrap multiaddrs, each ending in /p2p/ID.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w", a, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: needs /p2p/<peer id>: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// Init creates the home if needed: the folder (0700), an ed25519 identity
// key (0600) and a default config. Existing files are kept. It reports
// whether anything was created.
func (h Home) Init() (bool, error) {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return false, err
	}
	created := false
	if _, err := os.Stat(h.KeyPath()); errors.Is(err, os.ErrNotExist) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return false, err
		}
		b, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			return false, err
		}
		if err := fsx.WriteFileAtomic(h.KeyPath(), b, 0o600); err != nil {
			return false, err
		}
		created = true
	}
	if err := h.migrateConfig(); err != nil {
		return created, err
	}
	if _, err := os.Stat(h.ConfigPath()); errors.Is(err, os.ErrNotExist) {
		if err := fsx.WriteFileAtomic(h.ConfigPath(), EncodeConfig(DefaultConfig()), 0o600); err != nil {
			return false, err
		}
		created = true
	}
	return created, nil
}

// FetchKey returns the secret that authenticates this home's fetch logs
// (HOME/fetch.key, mode 0600), made on first use.
func (h Home) FetchKey() ([]byte, error) {
	p := filepath.Join(h.Dir, "fetch.key")
	b, err := os.ReadFile(p)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, fsx.WriteFileAtomic(p, b, 0o600)
}

// Key loads the identity key.
func (h Home) Key() (crypto.PrivKey, error) {
	b, err := os.ReadFile(h.KeyPath())
	if err != nil {
		return nil, err
	}
	return crypto.UnmarshalPrivateKey(b)
}

// Config loads and validates the config (migrating a config.json).
func (h Home) Config() (Config, error) {
	c := DefaultConfig()
	if err := h.migrateConfig(); err != nil {
		return c, err
	}
	b, err := os.ReadFile(h.ConfigPath())
	if err != nil {
		return c, err
	}
	if err := decodeConfig(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", h.ConfigPath(), err)
	}
	if err := c.Validate(); err != nil {
		// Name the line of the key the error is about.
		for _, k := range configKeys() {
			if strings.HasPrefix(err.Error(), "config: "+k+" ") || strings.HasPrefix(err.Error(), "config: "+k+":") {
				if line := lineOfKey(b, k); line > 0 {
					return c, fmt.Errorf("%s: line %d: %w", h.ConfigPath(), line, err)
				}
			}
		}
		return c, fmt.Errorf("%s: %w", h.ConfigPath(), err)
	}
	return c, nil
}

// lineOfKey is the 1-based line setting key in a TOML file, or 0.
func lineOfKey(b []byte, key string) int {
	for i, ln := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(ln, "="); ok && strings.TrimSpace(k) == key {
			return i + 1
		}
	}
	return 0
}

// maxConfigSize bounds config.toml.
const maxConfigSize = 1 << 20

// tomlType rewrites go-toml's "cannot decode TOML integer into struct
// field home.Config.StorageMax of type string" for people.
var tomlType = regexp.MustCompile(`cannot decode TOML (\w+) into struct field \S+ of type (\S+)`)

// EncodeConfig writes c as config.toml: every key, with a comment saying
// what it does.
func EncodeConfig(c Config) []byte {
	b, err := toml.Marshal(c)
	if err != nil {
		panic(err) // a Config always encodes
	}
	return append([]byte(configHeader), b...)
}

const configHeader = `# Shoal's configuration. Flags override it for one run; kill -HUP reloads
# it in a running daemon (rate caps and storage_max at once; the log names
# what needs a restart). Sizes and rates: 500GB, 2TiB, 50MB/s, 400Mbit/s. Durations: 30s,
# 10m, 168h. README "Configuration" lists every key with its default.

`

// migrateConfig turns a home's config.json, from before config.toml, into
// config.toml with the same values (read as strictly), and renames the
// old file config.json.migrated. A home with a config.toml is left alone.
func (h Home) migrateConfig() error {
	if _, err := os.Stat(h.ConfigPath()); !errors.Is(err, os.ErrNotExist) {
		if _, err := os.Lstat(h.legacyConfigPath()); err == nil {
			slog.Warn("config.json is ignored: config.toml holds the configuration (delete or rename config.json)", "home", h.Dir)
		}
		return nil
	}
	b, err := os.ReadFile(h.legacyConfigPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c := DefaultConfig()
	if err := decodeJSONConfig(b, &c); err != nil {
		return fmt.Errorf("%s (to be moved to config.toml): %w", h.legacyConfigPath(), err)
	}
	if err := fsx.WriteFileAtomic(h.ConfigPath(), EncodeConfig(c), 0o600); err != nil {
		return err
	}
	slog.Warn("the configuration moved from config.json to config.toml (same values, with comments); the old file is config.json.migrated",
		"home", h.Dir)
	return os.Rename(h.legacyConfigPath(), h.legacyConfigPath()+".migrated")
}

// decodeConfig reads config.toml strictly: an unknown key (a typo would
// otherwise leave the default in force, silently), a value of the wrong
// type or a syntax error is refused, naming the key and its line.
func decodeConfig(b []byte, c *Config) error {
	if len(b) > maxConfigSize {
		return fmt.Errorf("%w: %d bytes; a config is a few KiB (at most %d)", ErrBadConfig, len(b), maxConfigSize)
	}
	// Unknown keys first, by a plain scan: go-toml's strict mode takes
	// time quadratic in their number.
	known := map[string]bool{}
	for _, k := range configKeys() {
		known[k] = true
	}
	for i, ln := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(ln)
		if strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "['") && !strings.HasPrefix(t, `["`) {
			return fmt.Errorf("%w: line %d: unknown table %s (known keys: %s)", ErrBadConfig, i+1, t, strings.Join(configKeys(), ", "))
		}
		k, _, ok := strings.Cut(t, "=")
		if k = strings.Trim(strings.TrimSpace(k), `"'`); ok && k != "" && !strings.HasPrefix(t, "#") && !strings.ContainsAny(k[:1], `'"/[`) && !known[k] {
			return fmt.Errorf("%w: line %d: unknown key %q (known keys: %s)", ErrBadConfig, i+1, k, strings.Join(configKeys(), ", "))
		}
	}
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &strict) && len(strict.Errors) > 0:
		e := strict.Errors[0]
		line, _ := e.Position()
		return fmt.Errorf("%w: line %d: unknown key %q (known keys: %s)", ErrBadConfig, line, strings.Join(e.Key(), "."), strings.Join(configKeys(), ", "))
	case errors.As(err, &de):
		line, col := de.Position()
		key := ""
		if k := de.Key(); len(k) > 0 {
			key = fmt.Sprintf(" key %q:", strings.Join(k, "."))
		}
		msg := de.Error()
		if m := tomlType.FindStringSubmatch(msg); m != nil {
			want := map[string]string{"string": "a quoted string", "bool": "true or false", "int": "a whole number", "[]string": "a list of strings"}[m[2]]
			if want == "" {
				want = "a " + m[2]
			}
			msg = fmt.Sprintf("wants %s, not a TOML %s", want, m[1])
		}
		return fmt.Errorf("%w: line %d, column %d:%s %s", ErrBadConfig, line, col, key, msg)
	}
	// A value that does not parse (a duration, say), or of the wrong
	// type: find its key and line by decoding one line at a time.
	for i, ln := range strings.Split(string(b), "\n") {
		var one Config
		if k, _, ok := strings.Cut(ln, "="); ok && toml.Unmarshal([]byte(ln), &one) != nil {
			return fmt.Errorf("%w: line %d: key %q: %w", ErrBadConfig, i+1, strings.TrimSpace(k), err)
		}
	}
	return fmt.Errorf("%w: %w", ErrBadConfig, err)
}

// decodeJSONConfig reads a config.json strictly (for the migration).
func decodeJSONConfig(b []byte, c *Config) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		line, col := lineCol(b, syn.Offset)
		return fmt.Errorf("%w: line %d, column %d: %s", ErrBadConfig, line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := lineCol(b, typ.Offset)
		return fmt.Errorf("%w: line %d, column %d: key %q wants a %s, not a JSON %s", ErrBadConfig, line, col, typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		key := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fmt.Errorf("%w: unknown key %s (known keys: %s)", ErrBadConfig, key, strings.Join(configKeys(), ", "))
	}
	// A value that decodes but does not parse (a duration, say): find
	// its key by decoding one key at a time.
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) == nil {
		for k, v := range m {
			var one Config
			if json.Unmarshal([]byte(`{"`+k+`":`+string(v)+`}`), &one) != nil {
				return fmt.Errorf("%w: key %q: %w", ErrBadConfig, k, err)
			}
		}
	}
	return fmt.Errorf("%w: %w", ErrBadConfig, err)
}

// configKeys lists the keys config.toml may hold.
func configKeys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(b []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(b)))
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// NewToken returns a fresh random API token.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LoopbackDefault makes a bare ":port" mean 127.0.0.1:port.
func LoopbackDefault(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// CheckLoopback accepts host:port where host is a loopback IP or
// "localhost".
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}
