package content

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrNoMatch reports a file or tensor pattern that matches nothing.
var ErrNoMatch = errors.New("matches nothing")

// CheckGlobs refuses a malformed pattern before anything starts.
func CheckGlobs(patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("empty pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %s: %w", Quote(p), err)
		}
		if strings.Contains(p, "**") {
			return fmt.Errorf("pattern %s: '**' is not supported: '*' never crosses '/'; a pattern without '/' matches a name in any folder", Quote(p))
		}
	}
	return nil
}

// MatchPath reports whether a manifest path matches a pattern (Go's
// path.Match syntax): the whole path, or, for a pattern without a slash,
// its last component, so "*.json" matches "a/config.json" as it does in
// Hugging Face's allow_patterns.
func MatchPath(pattern, p string) bool {
	if ok, _ := path.Match(pattern, p); ok {
		return true
	}
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(p))
		return ok
	}
	return false
}

// SelectFiles says which of m's files a fetch with these patterns writes:
// those matching an include pattern (every file when there is none) and
// no exclude pattern. A selection of no file is an error wrapping
// ErrNoMatch, as is an include pattern that matches no file.
func SelectFiles(m *Manifest, include, exclude []string) ([]bool, error) {
	if err := CheckGlobs(append(append([]string(nil), include...), exclude...)); err != nil {
		return nil, err
	}
	want := make([]bool, len(m.Files))
	used := make([]bool, len(include))
	n := 0
	for i, f := range m.Files {
		in := len(include) == 0
		for k, p := range include {
			if MatchPath(p, f.Path) {
				in, used[k] = true, true
			}
		}
		for _, p := range exclude {
			if MatchPath(p, f.Path) {
				in = false
			}
		}
		if in {
			want[i] = true
			n++
		}
	}
	for k, ok := range used {
		if !ok {
			return nil, fmt.Errorf("--include %s %w among the %d files of %s", Quote(include[k]), ErrNoMatch, len(m.Files), m.Root)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("the file patterns leave no file of %s: nothing to fetch (%w)", m.Root, ErrNoMatch)
	}
	return want, nil
}

// TensorSubset is a safetensors file cut down to some of its tensors:
// the new header and, in the new file's order, where each kept tensor's
// bytes are in the original file.
type TensorSubset struct {
	// Header is the new file's first bytes: the length and the JSON
	// header (padded with spaces to a multiple of 8, as the format's own
	// writer does).
	Header []byte
	// Ranges are the kept tensors' bytes in the original file (absolute
	// offsets), in the order they follow the header in the new file.
	Ranges []Span
	// Pads are zero bytes written after each range (GGUF aligns every
	// tensor); nil for none.
	Pads []int64
	// Names are the kept tensors, in the same order.
	Names []string
	// Size is the new file's size.
	Size int64
}

// SafetensorsSubset validates a safetensors header (hdr is the JSON, for a
// data section of dataLen bytes) and cuts it down to the tensors match
// accepts, with their offsets rewritten to follow one another. It keeps
// __metadata__. No tensor matched is an error wrapping ErrNoMatch.
func SafetensorsSubset(hdr []byte, dataLen int64, match func(name string) bool) (*TensorSubset, error) {
	tensors, err := ParseSafetensorsHeader(hdr, dataLen)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
	}
	base := 8 + int64(len(hdr))
	out := map[string]any{}
	if md, ok := raw["__metadata__"]; ok {
		out["__metadata__"] = md
	}
	sub := &TensorSubset{}
	var at int64
	for _, t := range tensors { // in offset order: the new file keeps it
		if !match(t.Name) {
			continue
		}
		var ti tensorInfo
		if err := json.Unmarshal(raw[t.Name], &ti); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
		}
		n := t.End - t.Begin
		ti.DataOffsets = []int64{at, at + n}
		out[t.Name] = ti
		sub.Ranges = append(sub.Ranges, Span{Off: base + t.Begin, Len: n})
		sub.Names = append(sub.Names, t.Name)
		at += n
	}
	if len(sub.Names) == 0 {
		return nil, fmt.Errorf("no tensor of the %d %w", len(tensors), ErrNoMatch)
	}
	js, err := json.Marshal(out) // map keys sorted: one encoding
	if err != nil {
		return nil, err
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	sub.Header = binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	sub.Header = append(sub.Header, js...)
	sub.Size = int64(len(sub.Header)) + at
	return sub, nil
}

// Write writes the subset file to w, reading the kept tensors from src
// (the original file, or a copy holding at least their bytes in place).
func (s *TensorSubset) Write(src io.ReaderAt, w io.Writer) error {
	if _, err := w.Write(s.Header); err != nil {
		return err
	}
	for i, r := range s.Ranges {
		if _, err := io.Copy(w, io.NewSectionReader(src, r.Off, r.Len)); err != nil {
			return err
		}
		if i < len(s.Pads) && s.Pads[i] > 0 {
			if _, err := w.Write(make([]byte, s.Pads[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// Subset reads the header of a weights file (safetensors or GGUF, by its
// name) through r and cuts it down to the tensors match accepts: the new
// header, and which byte ranges of the original follow it. Any other file
// is an error wrapping ErrNoTensors.
func Subset(name string, r io.ReaderAt, size int64, match func(string) bool) (*TensorSubset, error) {
	switch {
	case IsSafetensorsName(name):
		hdr, err := SafetensorsHeader(r, size)
		if err != nil {
			return nil, err
		}
		return SafetensorsSubset(hdr, size-8-int64(len(hdr)), match)
	case IsGGUFName(name):
		return GGUFSubset(r, size, match)
	}
	return nil, fmt.Errorf("%s: %w", Quote(name), ErrNoTensors)
}

// ErrNoTensors reports a file that is not a weights file Shoal can cut
// down to some tensors.
var ErrNoTensors = errors.New("not a safetensors or GGUF file")

// GGUFSubset cuts a GGUF file down to the tensors match accepts: the
// header keeps the version and every metadata key as it was (bytes
// copied), lists only those tensors, in their original order, with
// offsets rewritten to follow one another at the file's alignment.
func GGUFSubset(r io.ReaderAt, size int64, match func(string) bool) (*TensorSubset, error) {
	g, err := ParseGGUF(r, size)
	if err != nil {
		return nil, err
	}
	kv := make([]byte, g.InfoStart-24)
	if _, err := r.ReadAt(kv, 24); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGGUF, err)
	}
	align := g.Alignment
	up := func(n int64) int64 { return (n + align - 1) &^ (align - 1) }
	sub := &TensorSubset{}
	var infos []byte
	var at int64
	for _, t := range g.Tensors {
		if !match(t.Name) {
			continue
		}
		infos = binary.LittleEndian.AppendUint64(infos, uint64(len(t.Name)))
		infos = append(infos, t.Name...)
		infos = binary.LittleEndian.AppendUint32(infos, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			infos = binary.LittleEndian.AppendUint64(infos, d)
		}
		infos = binary.LittleEndian.AppendUint32(infos, ggmlTypeID(t.Type))
		infos = binary.LittleEndian.AppendUint64(infos, uint64(at))
		sub.Ranges = append(sub.Ranges, Span{Off: t.Off, Len: t.Size})
		sub.Pads = append(sub.Pads, up(t.Size)-t.Size)
		sub.Names = append(sub.Names, t.Name)
		at += up(t.Size)
	}
	if len(sub.Names) == 0 {
		return nil, fmt.Errorf("no tensor of the %d %w", len(g.Tensors), ErrNoMatch)
	}
	h := append([]byte("GGUF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(h[4:], g.Version)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(sub.Names)))
	h = binary.LittleEndian.AppendUint64(h, uint64(len(g.Meta)))
	h = append(append(h, kv...), infos...)
	h = append(h, make([]byte, up(int64(len(h)))-int64(len(h)))...)
	// The last tensor needs no padding after it.
	last := len(sub.Pads) - 1
	at -= sub.Pads[last]
	sub.Pads[last] = 0
	sub.Header, sub.Size = h, int64(len(h))+at
	return sub, nil
}

// TensorsOf lists a safetensors header's tensors (name, dtype, shape and
// size), in offset order, for inspect.
func TensorsOf(hdr []byte, dataLen int64) ([]TensorInfo, error) {
	tensors, err := ParseSafetensorsHeader(hdr, dataLen)
	if err != nil {
		return nil, err
	}
	dec := map[string]json.RawMessage{}
	if err := json.Unmarshal(hdr, &dec); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
	}
	out := make([]TensorInfo, 0, len(tensors))
	for _, t := range tensors {
		var ti tensorInfo
		if err := json.Unmarshal(dec[t.Name], &ti); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
		}
		out = append(out, TensorInfo{Name: t.Name, DType: ti.DType, Shape: ti.Shape, Off: 8 + int64(len(hdr)) + t.Begin, Size: t.End - t.Begin})
	}
	return out, nil
}

// TensorInfo is one tensor of a weights file, for inspect.
type TensorInfo struct {
	Name  string   `json:"name"`
	DType string   `json:"dtype"`
	Shape []uint64 `json:"shape"`
	Off   int64    `json:"offset"` // in the file
	Size  int64    `json:"size"`
}

// IsSafetensorsIndexName reports a sharded safetensors model's index
// (model.safetensors.index.json), whose weight_map names each tensor's
// shard.
func IsSafetensorsIndexName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".safetensors.index.json")
}

// MaxSafetensorsIndex caps the index a fetch of some tensors rewrites.
const MaxSafetensorsIndex = 64 << 20

// SafetensorsIndexSubset cuts a sharded model's index down to the tensors
// kept (name → bytes): weight_map keeps only them, metadata.total_size,
// if present, becomes their total, and everything else stays. A loader
// that reads the index then looks only for tensors that are there.
func SafetensorsIndexSubset(data []byte, keep map[string]int64) ([]byte, error) {
	var idx map[string]json.RawMessage
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("safetensors index: %w", err)
	}
	var wm map[string]string
	if err := json.Unmarshal(idx["weight_map"], &wm); err != nil {
		return nil, fmt.Errorf("safetensors index: weight_map: %w", err)
	}
	var total int64
	for name := range wm {
		n, ok := keep[name]
		if !ok {
			delete(wm, name)
		}
		total += n
	}
	b, err := json.Marshal(wm)
	if err != nil {
		return nil, err
	}
	idx["weight_map"] = b
	if raw, ok := idx["metadata"]; ok {
		var md map[string]any
		if json.Unmarshal(raw, &md) == nil {
			if _, ok := md["total_size"]; ok {
				md["total_size"] = total
				if b, err := json.Marshal(md); err == nil {
					idx["metadata"] = b
				}
			}
		}
	}
	return json.MarshalIndent(idx, "", "  ")
}
