package content

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ChunkerVersion numbers the chunking rule set; it is stored in every
// manifest. Change a rule, bump it (and the golden tests will say so).
// Version 2 added the GGUF rule.
const ChunkerVersion = 2

// MinChunkerVersion is the oldest chunker version whose manifests are still
// read. A manifest names its chunks, so how they were cut does not matter
// to a reader: chunker 1 (version 2 without the GGUF rule) stays valid.
const MinChunkerVersion = 1

// MaxChunk is the largest chunk, 1 MiB.
const MaxChunk = 1 << 20

// MaxSafetensorsHeader caps the JSON header of a safetensors file (the
// reference implementation's own limit).
const MaxSafetensorsHeader = 100 << 20

// Span is one chunk's place in a file.
type Span struct {
	Off int64
	Len int64
}

// Layout says how a file was cut.
type Layout int

// Layouts.
const (
	LayoutFixed       Layout = iota // fixed 1 MiB
	LayoutSafetensors               // header run, then one run per tensor
	LayoutGGUF                      // header run, then one run per tensor and its padding
)

func (l Layout) String() string {
	switch l {
	case LayoutSafetensors:
		return "safetensors"
	case LayoutGGUF:
		return "gguf"
	}
	return "fixed"
}

// IsSafetensorsName reports whether a file name asks for tensor-boundary
// chunking.
func IsSafetensorsName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".safetensors")
}

// IsPickleName reports whether a file name is a pickle-based format (which
// can run code when loaded; Shoal never loads it, but says so).
func IsPickleName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// FixedSpans cuts [off, off+n) into runs of MaxChunk, appending to spans.
func FixedSpans(spans []Span, off, n int64) []Span {
	for n > 0 {
		l := min(n, MaxChunk)
		spans = append(spans, Span{off, l})
		off += l
		n -= l
	}
	return spans
}

// Chunking is how a file is cut into chunks.
type Chunking struct {
	Spans  []Span
	Layout Layout
	// Fallback says why a .safetensors or .gguf file is cut at fixed
	// 1 MiB (its header did not validate; it wraps ErrBadSafetensors or
	// ErrBadGGUF), for the caller to report as a warning; nil otherwise.
	// The spans are valid either way.
	Fallback error
}

// Plan cuts a file of the given size (SPEC.md §2). A file whose name ends
// in .safetensors or .gguf and whose header validates is cut on tensor
// boundaries; otherwise it is cut at fixed 1 MiB.
func Plan(name string, r io.ReaderAt, size int64) Chunking {
	var (
		spans  []Span
		err    error
		layout Layout
	)
	switch {
	case IsSafetensorsName(name):
		spans, err = safetensorsPlan(r, size)
		layout = LayoutSafetensors
	case IsGGUFName(name):
		spans, err = ggufPlan(r, size)
		layout = LayoutGGUF
	default:
		return Chunking{Spans: FixedSpans(nil, 0, size), Layout: LayoutFixed}
	}
	if err != nil {
		return Chunking{Spans: FixedSpans(nil, 0, size), Layout: LayoutFixed, Fallback: err}
	}
	return Chunking{Spans: spans, Layout: layout}
}

func safetensorsPlan(r io.ReaderAt, size int64) ([]Span, error) {
	hdr, err := SafetensorsHeader(r, size)
	if err != nil {
		return nil, err
	}
	n := len(hdr)
	tensors, err := ParseSafetensorsHeader(hdr, size-8-int64(n))
	if err != nil {
		return nil, err
	}
	base := 8 + int64(n)
	spans := FixedSpans(nil, 0, base)
	for _, t := range tensors {
		spans = FixedSpans(spans, base+t.Begin, t.End-t.Begin)
	}
	return spans, nil
}

// Tensor is one entry of a safetensors header: its name and its byte range
// relative to the start of the data section.
type Tensor struct {
	Name       string
	Begin, End int64
}

type tensorInfo struct {
	DType       string   `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []int64  `json:"data_offsets"`
}

// ParseSafetensorsHeader validates the JSON header of a safetensors file
// whose data section is dataLen bytes long, and returns its tensors sorted by
// offset. Valid means: a JSON object without duplicate keys, every entry but
// "__metadata__" a tensor with a dtype and two data_offsets, begin <= end,
// and the ranges in order with no overlap and no gap, exactly covering the
// data section.
func ParseSafetensorsHeader(hdr []byte, dataLen int64) ([]Tensor, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrBadSafetensors}, a...)...) }
	if len(hdr) > MaxSafetensorsHeader {
		return nil, bad("header too large")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad("not a JSON object")
	}
	seen := map[string]bool{}
	var ts []Tensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("%v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, bad("key is not a string")
		}
		if seen[key] {
			return nil, bad("duplicate key %s", Quote(key))
		}
		seen[key] = true
		if key == "__metadata__" {
			var meta map[string]string
			if err := dec.Decode(&meta); err != nil {
				return nil, bad("__metadata__: %v", err)
			}
			continue
		}
		var ti tensorInfo
		if err := dec.Decode(&ti); err != nil {
			return nil, bad("tensor %s: %v", Quote(key), err)
		}
		if ti.DType == "" || ti.Shape == nil || len(ti.DataOffsets) != 2 {
			return nil, bad("tensor %s: missing dtype, shape or data_offsets", Quote(key))
		}
		b, e := ti.DataOffsets[0], ti.DataOffsets[1]
		if b < 0 || e < b {
			return nil, bad("tensor %s: bad data_offsets [%d, %d]", Quote(key), b, e)
		}
		ts = append(ts, Tensor{Name: key, Begin: b, End: e})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("%v", err)
	}
	// Trailing bytes after the object may only be spaces (the format pads
	// the header with 0x20).
	if len(bytes.Trim(hdr[dec.InputOffset():], " ")) != 0 {
		return nil, bad("trailing bytes after header")
	}
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		return ts[i].End < ts[j].End
	})
	var at int64
	for _, t := range ts {
		if t.Begin != at {
			if t.Begin < at {
				return nil, bad("tensor %s overlaps the one before", Quote(t.Name))
			}
			return nil, bad("gap before tensor %s", Quote(t.Name))
		}
		at = t.End
	}
	if at != dataLen {
		return nil, bad("tensors cover %d bytes, data section is %d", at, dataLen)
	}
	return ts, nil
}
