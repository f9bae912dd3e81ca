package home

import (
	"strings"
	"testing"
)

// Rates parse as people write them; bits and bytes are told apart, and
// an ambiguous spelling is refused, never read as bytes.
func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "": 0, "50MB/s": 50e6, "50MB": 50e6, "50M": 50e6, "50 MB/s": 50e6,
		"50MiB/s": 50 << 20, "1.5GiB/s": 3 << 29, "800KB": 800e3, "800k": 800e3,
		"400Mbit/s": 50e6, "400mbit": 50e6, "8Gbit/s": 1e9, "2048": 2048,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, says := range map[string]string{
		"50mbps": "ambiguous", "50Mbps": "ambiguous", "50Mb/s": "ambiguous", "50kb": "ambiguous",
		"50 furlongs": "unknown unit", "fast": "want a number", "-5MB": "want a number", "100B/s": "below 1 KiB/s",
	} {
		_, err := ParseRate(in)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseRate(%q): %v, want it to say %q", in, err, says)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "": 0, "500GB": 500e9, "2TiB": 2 << 40, "800M": 800e6, "1.5 GiB": 3 << 29} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"500Gb", "10Mbit", "50MB/s", "lots", "-1G", "12 parsecs"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
