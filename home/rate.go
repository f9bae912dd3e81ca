package home

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseRate parses a byte rate such as "50MB/s", "1.5GiB/s", "800KB" or
// "0" (unlimited) into bytes per second. Units: B, KB, MB, GB, TB
// (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024); "/s" is
// optional.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "ps")
	if t == "" || t == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, "B"
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q: want a number and a unit, e.g. 50MB/s", s)
	}
	mult := map[string]float64{
		"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
	}[strings.ToUpper(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("rate %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB, GiB)", s, unit)
	}
	r := v * mult
	if r > 0 && r < 1024 {
		return 0, fmt.Errorf("rate %q: below 1 KiB/s", s)
	}
	return int64(r), nil
}
