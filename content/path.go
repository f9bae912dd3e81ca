package content

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on paths inside a manifest.
const (
	MaxPathLen      = 1024 // bytes in one relative path
	MaxComponentLen = 255  // bytes in one path component
	MaxPathDepth    = 64   // components in one path
)

// StateDirName is the folder, at the top of a fetch's output folder, that
// records an unfinished fetch; no manifest path may use it.
const StateDirName = ".shoal-fetch"

// CheckPath accepts only clean relative slash paths: no leading slash, no
// empty, "." or ".." component, no backslash, no NUL or control character,
// valid UTF-8, within the length limits.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrBadPath, Quote(p), why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad("too long")
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case p[0] == '/':
		return bad("absolute")
	case strings.ContainsRune(p, '\\'):
		return bad("backslash")
	case len(p) >= 2 && p[1] == ':':
		return bad("drive letter")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("control character")
		}
	}
	parts := strings.Split(p, "/")
	if len(parts) > MaxPathDepth {
		return bad("too deep")
	}
	if parts[0] == StateDirName || strings.HasSuffix(p, PartialExt) {
		return bad("name reserved for unfinished downloads")
	}
	for _, c := range parts {
		switch {
		case c == "":
			return bad("empty component")
		case c == "." || c == "..":
			return bad("dot component")
		case len(c) > MaxComponentLen:
			return bad("component too long")
		}
	}
	return nil
}

// CheckPaths applies CheckPath to each path and refuses duplicates, names
// that collide when case is folded, and a path that is both a file and a
// folder of another path (a and a/b).
func CheckPaths(paths []string) error {
	seen := make(map[string]string, len(paths))
	for _, p := range paths {
		if err := CheckPath(p); err != nil {
			return err
		}
		k := strings.ToLower(p)
		if prev, ok := seen[k]; ok {
			if prev == p {
				return fmt.Errorf("%w: %s: duplicate", ErrBadPath, Quote(p))
			}
			return fmt.Errorf("%w: %s and %s collide when case is folded", ErrBadPath, Quote(prev), Quote(p))
		}
		seen[k] = p
	}
	for _, p := range paths {
		k := strings.ToLower(p)
		for i := strings.IndexByte(k, '/'); i >= 0; i = nextSlash(k, i) {
			if prev, ok := seen[k[:i]]; ok {
				return fmt.Errorf("%w: %s is a file and a folder (%s)", ErrBadPath, Quote(prev), Quote(p))
			}
		}
	}
	return nil
}

func nextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
