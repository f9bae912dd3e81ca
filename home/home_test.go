package home

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:0", "[::1]:5001", "localhost:0", "127.0.0.2:80"} {
		if err := CheckLoopback(a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"0.0.0.0:0", "[::]:0", "192.168.1.1:80", "10.0.0.1:1", "example.com:80", ":5001", "nonsense"} {
		if err := CheckLoopback(a); err == nil {
			t.Errorf("%s accepted", a)
		}
	}
}

// A config.toml with a typo, a wrong type or broken syntax is refused,
// naming the key and the line; a mistyped key used to be ignored, leaving
// the default in force.
func TestConfigStrict(t *testing.T) {
	h := Home{Dir: t.TempDir()}
	if _, err := h.Init(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ json, want string }{
		{"listen = ['/ip4/127.0.0.1/tcp/0']\nboostrap = []\n", `line 2: unknown key "boostrap"`},
		{"mdns = 'yes'\n", `line 1`},
		{"mdns = 'yes'\n", `mdns`},
		{"mdns = true\napi = '127.0.0.1:0',\n", "line 2"},
		{"# a comment\nfind_timeout = 'soon'\n", `line 2, column 16: key "find_timeout"`},
		{"metrics = '9464'\n", "metrics"},
		{"conns_per_ip = 0\n", "conns_per_ip"},
		{"# a comment\n\nstorage_max = '2TBB'\n", "line 3: config: storage_max"},
		{"storage_max = '99999999999999999999999TB'\n", "too large"},
		{"[mirror]\nmax = 1\n", "line 1: unknown table"},
		{strings.Repeat("x = 1\n", 3) + "listen = []\n", `line 1: unknown key "x"`},
		{strings.Repeat("# pad\n", 200000), "at most"},
		{"storage_max = 2000000\n", `key "storage_max": wants a quoted string, not a TOML integer`},
	} {
		if err := os.WriteFile(h.ConfigPath(), []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := h.Config()
		if !errors.Is(err, ErrBadConfig) && !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("%s: %v", c.json, err)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.json, err, c.want)
		}
	}
}

// A home from before config.toml has its config.json moved over, values
// kept, and the old file renamed; a config.json that does not read is
// refused, naming the file, and left as it is.
func TestConfigMigratesFromJSON(t *testing.T) {
	h := Home{Dir: t.TempDir()}
	old := `{"listen": ["/ip4/127.0.0.1/tcp/0"], "storage_max": "5GB", "find_timeout": "7s", "mdns": false}`
	if err := os.WriteFile(h.legacyConfigPath(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Init(); err != nil {
		t.Fatal(err)
	}
	c, err := h.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.StorageMax != "5GB" || c.FindTimeout != Duration(7*time.Second) || c.MDNS || c.Listen[0] != "/ip4/127.0.0.1/tcp/0" || c.DHTMode != "auto" {
		t.Fatalf("migrated config: %+v", c)
	}
	if _, err := os.Stat(h.legacyConfigPath() + ".migrated"); err != nil {
		t.Fatalf("config.json not renamed: %v", err)
	}
	b, _ := os.ReadFile(h.ConfigPath())
	if !strings.Contains(string(b), "# Disk budget") || !strings.Contains(string(b), "storage_max = '5GB'") {
		t.Fatalf("config.toml:\n%s", b)
	}

	bad := Home{Dir: t.TempDir()}
	if err := os.WriteFile(bad.legacyConfigPath(), []byte(`{"boostrap": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Config(); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("a bad config.json: %v", err)
	}
	if _, err := os.Stat(bad.ConfigPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a config.toml was written from a config.json that does not read")
	}
}

// README's "Configuration" table documents every key config.toml may
// hold.
func TestREADMEDocumentsEveryConfigKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(b), "## Configuration")
	table, _, _ = strings.Cut(table, "\n## ")
	for _, k := range configKeys() {
		if !strings.Contains(table, "| `"+k+"` |") {
			t.Errorf("README's Configuration table lacks %q", k)
		}
	}
}
