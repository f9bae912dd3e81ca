package home

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rateForms names what ParseRate accepts, for its refusals.
const rateForms = `e.g. 50MB/s, 50MiB/s, 50M (bytes), 400Mbit/s (bits), or 0 for no cap`

// rateUnits are byte and bit units, by their upper-cased spelling: K, M,
// G, T are powers of 1000, Ki… of 1024; "bit" units are eighths.
var rateUnits = map[string]float64{
	"": 1, "B": 1,
	"K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
	"KI": 1 << 10, "KIB": 1 << 10, "MI": 1 << 20, "MIB": 1 << 20, "GI": 1 << 30, "GIB": 1 << 30, "TIB": 1 << 40,
	"BIT": 1.0 / 8, "KBIT": 1e3 / 8, "MBIT": 1e6 / 8, "GBIT": 1e9 / 8,
	"KIBIT": (1 << 10) / 8.0, "MIBIT": (1 << 20) / 8.0, "GIBIT": (1 << 30) / 8.0,
}

// ParseRate parses a rate as people write it into bytes per second:
// "50MB/s", "1.5GiB/s", "50M", "800KB", "400Mbit/s", or "0" (no cap).
// K, M, G, T are powers of 1000, KiB, MiB, GiB, TiB of 1024; "/s" is
// optional; bits are spelled "bit". "50mbps", "50Mb/s" and the like are
// refused: they are megabits to a network engineer and megabytes to many
// others, and reading one as the other is off by eight.
func ParseRate(s string) (int64, error) {
	return parseAmount(s, "rate", true)
}

// sizeForms names what ParseSize accepts, for its refusals.
const sizeForms = `e.g. 500GB, 2TiB, 800M (bytes), or 0 for no bound`

// ParseSize parses a size as people write it into bytes: "500GB",
// "1.5TiB", "800M", or "0". Units are those of ParseRate, bytes only.
func ParseSize(s string) (int64, error) {
	return parseAmount(s, "size", false)
}

// parseAmount parses a rate (with an optional "/s", bits allowed) or a
// size.
func parseAmount(s, what string, isRate bool) (int64, error) {
	forms := sizeForms
	t := strings.TrimSpace(s)
	if isRate {
		forms = rateForms
		t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	}
	if t == "" || t == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s %q: want a number and a unit, %s", what, s, forms)
	}
	u := strings.ToUpper(unit)
	if strings.HasSuffix(u, "PS") || (len(unit) >= 2 && strings.HasSuffix(unit, "b") && !strings.HasSuffix(u, "IB")) {
		pre := strings.ToUpper(unit[:1])
		return 0, fmt.Errorf("%s %q: %q is ambiguous (bits or bytes?): write %sB for bytes or %sbit for bits", what, s, unit, pre, pre)
	}
	mult, ok := rateUnits[u]
	if !ok || (!isRate && strings.HasSuffix(u, "BIT")) {
		return 0, fmt.Errorf("%s %q: unknown unit %q; %s", what, s, unit, forms)
	}
	r := v * mult
	if r >= math.MaxInt64 {
		return 0, fmt.Errorf("%s %q: too large", what, s)
	}
	if r > 0 && r < 1024 {
		if isRate {
			return 0, fmt.Errorf("rate %q: below 1 KiB/s", s)
		}
		return 0, fmt.Errorf("size %q: below 1 KiB", s)
	}
	return int64(r), nil
}
