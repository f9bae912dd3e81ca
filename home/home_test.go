package home

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
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

// A config.json with a typo, a wrong type or broken syntax is refused,
// naming the key or the line and column; a mistyped key used to be
// ignored, leaving the default in force.
func TestConfigStrict(t *testing.T) {
	h := Home{Dir: t.TempDir()}
	if _, err := h.Init(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ json, want string }{
		{`{"listen": ["/ip4/127.0.0.1/tcp/0"], "boostrap": []}`, `unknown key "boostrap"`},
		{`{"mdns": "yes"}`, `key "mdns" wants a bool`},
		{"{\n  \"mdns\": true,\n  \"api\": \"127.0.0.1:0\",,\n}", "line 3"},
		{`{"find_timeout": "soon"}`, "find_timeout"},
		{`{"metrics": "9464"}`, "metrics"},
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

// README's "Configuration" table documents every key config.json may
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
