package content

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Escape makes a string from a manifest or a peer safe to print on a
// terminal: control characters (escape sequences included) and invalid
// UTF-8 are shown as Go escapes, everything else as is.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		// Format characters (Cf) include the bidi overrides (U+202E) a
		// name could use to read backwards on a terminal.
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	q = q[1 : len(q)-1]
	return strings.ReplaceAll(q, `\"`, `"`)
}

// Quote is Escape in double quotes, for error messages.
func Quote(s string) string { return `"` + Escape(s) + `"` }

// OneLine is Escape for a message of several lines (libp2p's list of
// failed dials, say): its lines are trimmed and joined with "; ", so it
// prints as one readable line.
func OneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, Escape(l))
		}
	}
	return strings.Join(parts, "; ")
}

// HumanBytes formats a size for people: 1.5 GiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
