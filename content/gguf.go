package content

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// Caps of the GGUF header parser. With them a hostile header makes
// ParseGGUF read at most MaxGGUFHeader bytes and allocate a few MiB: nothing
// is allocated from a declared count or length beyond what the bytes read
// so far can hold, and what is kept is at most MaxGGUFKV keys with values of
// at most MaxGGUFMetaString bytes and MaxGGUFTensors tensors (a header at
// every cap takes about 7 MiB in all; TestGGUFAtCaps holds it under 12).
// Longer values are checked, not kept. Every loop step reads at least one
// byte of the header, so no loop runs more than MaxGGUFHeader times.
const (
	// MaxGGUFHeader caps the bytes read from the start of the file to the
	// end of the tensor infos (the largest vocabularies take under 16 MiB).
	MaxGGUFHeader = 64 << 20
	// MaxGGUFTensors caps tensor_count.
	MaxGGUFTensors = 1 << 15
	// MaxGGUFKV caps metadata_kv_count.
	MaxGGUFKV = 1 << 10
	// MaxGGUFKey caps the length of a metadata key.
	MaxGGUFKey = 256
	// MaxGGUFMetaString is the longest string value kept in GGUF.Meta;
	// longer ones (chat templates) are checked and stood in for by a
	// GGUFSkipped.
	MaxGGUFMetaString = 1024
	// MaxGGUFTensorName caps the length of a tensor name (the GGUF
	// specification's limit).
	MaxGGUFTensorName = 64
	// MaxGGUFDims caps a tensor's number of dimensions (ggml's
	// GGML_MAX_DIMS).
	MaxGGUFDims = 4
	// MaxGGUFDepth caps the nesting of arrays in a metadata value.
	MaxGGUFDepth = 4
	// GGUFDefaultAlignment is the data alignment of a GGUF file without a
	// general.alignment key.
	GGUFDefaultAlignment = 32
)

// IsGGUFName reports whether a file name asks for GGUF tensor-boundary
// chunking: it ends in .gguf, compared case-insensitively (split files,
// model-00001-of-00003.gguf, included).
func IsGGUFName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".gguf")
}

// GGUF is the parsed header of a GGUF file (llama.cpp's format, versions 2
// and 3, little-endian).
type GGUF struct {
	Version uint32
	// Alignment is general.alignment, or GGUFDefaultAlignment.
	Alignment int64
	// DataStart is the absolute offset of the data section: the end of the
	// tensor infos rounded up to Alignment.
	DataStart int64
	// InfoStart is the offset of the tensor infos: the end of the
	// metadata, which begins at byte 24.
	InfoStart int64
	// Meta holds the metadata: a key's value is a uint8, int8, uint16,
	// int16, uint32, int32, uint64, int64, float32, float64, bool or
	// string, or a GGUFSkipped for an array or a string longer than
	// MaxGGUFMetaString. Keys and strings are as in the file, not
	// escaped: print them with Escape.
	Meta map[string]any
	// Tensors are sorted by offset (then size, then name).
	Tensors []GGUFTensor
}

// GGUFTensor is one tensor of a GGUF file.
type GGUFTensor struct {
	Name string // as in the file: print it with Escape
	Type string // ggml type name: "F32", "F16", "Q4_K", ...
	// Shape is the dimensions as GGUF stores them, innermost first.
	Shape []uint64
	Off   int64 // absolute offset of its first byte in the file
	Size  int64 // bytes, from Type and Shape
}

// GGUFSkipped stands in GGUF.Meta for a value that was checked but not
// kept: an array (Type is its element type, as "[]string", and Len its
// length) or a long string (Type "string", Len its length in bytes).
type GGUFSkipped struct {
	Type string
	Len  uint64
}

// MetaString returns the string value of a metadata key (general.name,
// general.architecture), or "" if it is absent, not a string, or too long
// to have been kept.
func (g *GGUF) MetaString(key string) string {
	s, _ := g.Meta[key].(string)
	return s
}

// ggmlType is a ggml tensor type's storage: elements per block and bytes
// per block (ggml's type traits blck_size and type_size).
type ggmlType struct {
	name  string
	block uint64
	size  uint64
}

// ggmlTypes maps a ggml_type number to its storage, from ggml's type
// traits. Numbers absent here (4, 5, 31–33 and 36–38 were removed from
// ggml; later ones are unknown) make a header invalid. This table is part
// of the chunking rule (SPEC.md §2): adding to it is a new ChunkerVersion.
var ggmlTypes = map[uint32]ggmlType{
	0:  {"F32", 1, 4},
	1:  {"F16", 1, 2},
	2:  {"Q4_0", 32, 18},
	3:  {"Q4_1", 32, 20},
	6:  {"Q5_0", 32, 22},
	7:  {"Q5_1", 32, 24},
	8:  {"Q8_0", 32, 34},
	9:  {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84},
	11: {"Q3_K", 256, 110},
	12: {"Q4_K", 256, 144},
	13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210},
	15: {"Q8_K", 256, 292},
	16: {"IQ2_XXS", 256, 66},
	17: {"IQ2_XS", 256, 74},
	18: {"IQ3_XXS", 256, 98},
	19: {"IQ1_S", 256, 50},
	20: {"IQ4_NL", 32, 18},
	21: {"IQ3_S", 256, 110},
	22: {"IQ2_S", 256, 82},
	23: {"IQ4_XS", 256, 136},
	24: {"I8", 1, 1},
	25: {"I16", 1, 2},
	26: {"I32", 1, 4},
	27: {"I64", 1, 8},
	28: {"F64", 1, 8},
	29: {"IQ1_M", 256, 56},
	30: {"BF16", 1, 2},
	34: {"TQ1_0", 256, 54},
	35: {"TQ2_0", 256, 66},
	39: {"MXFP4", 32, 17},
}

// ggmlTypeID is the number of a ggml type name ParseGGUF reported.
func ggmlTypeID(name string) uint32 {
	for id, t := range ggmlTypes {
		if t.name == name {
			return id
		}
	}
	panic("content: ggml type " + name + " not in the table")
}

// GGUF metadata value types.
const (
	ggufUint8 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

var ggufTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// ggufFixedSize is the encoded size of a fixed-size value type, 0 for
// strings and arrays.
func ggufFixedSize(t uint32) uint64 {
	switch t {
	case ggufUint8, ggufInt8, ggufBool:
		return 1
	case ggufUint16, ggufInt16:
		return 2
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4
	case ggufUint64, ggufInt64, ggufFloat64:
		return 8
	}
	return 0
}

// ggufReader reads the header sequentially, never past limit bytes from
// the start of the file.
type ggufReader struct {
	br    *bufio.Reader
	pos   int64 // bytes consumed
	limit int64 // min(file size, MaxGGUFHeader)
	buf   [8]byte
	// scratch holds a string being read (at most MaxGGUFMetaString).
	scratch []byte
}

func badGGUF(f string, a ...any) error {
	return fmt.Errorf("%w: "+f, append([]any{ErrBadGGUF}, a...)...)
}

// need checks that n more bytes lie within the limit.
func (r *ggufReader) need(n uint64) error {
	if n > r.left() {
		return r.pastLimit()
	}
	return nil
}

// left is how many bytes may still be read.
func (r *ggufReader) left() uint64 { return uint64(r.limit - r.pos) }

// pastLimit says why the header cannot be longer.
func (r *ggufReader) pastLimit() error {
	if r.limit < MaxGGUFHeader {
		return badGGUF("header runs past the end of the file (at byte %d)", r.pos)
	}
	return badGGUF("header longer than %d bytes", MaxGGUFHeader)
}

func (r *ggufReader) read(n int) ([]byte, error) {
	if err := r.need(uint64(n)); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r.br, r.buf[:n]); err != nil {
		return nil, badGGUF("reading at byte %d: %w", r.pos, err)
	}
	r.pos += int64(n)
	return r.buf[:n], nil
}

func (r *ggufReader) u32() (uint32, error) {
	b, err := r.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *ggufReader) u64() (uint64, error) {
	b, err := r.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *ggufReader) skip(n uint64) error {
	if err := r.need(n); err != nil {
		return err
	}
	if _, err := r.br.Discard(int(n)); err != nil {
		return badGGUF("reading at byte %d: %w", r.pos, err)
	}
	r.pos += int64(n)
	return nil
}

// bools reads n bools (the caller checked they fit), each 0 or 1.
func (r *ggufReader) bools(n uint64) error {
	var buf [4096]byte
	for n > 0 {
		k := min(n, uint64(len(buf)))
		if _, err := io.ReadFull(r.br, buf[:k]); err != nil {
			return badGGUF("reading at byte %d: %w", r.pos, err)
		}
		for i, b := range buf[:k] {
			if b > 1 {
				return badGGUF("bool value %d at byte %d", b, r.pos+int64(i))
			}
		}
		r.pos += int64(k)
		n -= k
	}
	return nil
}

// str reads a string. It returns it if it is at most keep bytes long, and
// its length either way.
func (r *ggufReader) str(keep uint64) (string, uint64, error) {
	n, err := r.u64()
	if err != nil {
		return "", 0, err
	}
	if n > keep {
		if err := r.skip(n); err != nil {
			return "", 0, err
		}
		return "", n, nil
	}
	if err := r.need(n); err != nil {
		return "", 0, err
	}
	if uint64(cap(r.scratch)) < n {
		r.scratch = make([]byte, max(n, 256))
	}
	b := r.scratch[:n]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return "", 0, badGGUF("reading at byte %d: %w", r.pos, err)
	}
	r.pos += int64(n)
	return string(b), n, nil
}

// value reads a metadata value of type t.
func (r *ggufReader) value(t uint32, depth int) (any, error) {
	switch t {
	case ggufString:
		s, n, err := r.str(MaxGGUFMetaString)
		switch {
		case err != nil:
			return nil, err
		case n > MaxGGUFMetaString:
			return GGUFSkipped{Type: "string", Len: n}, nil
		}
		return s, nil
	case ggufArray:
		return r.array(depth + 1)
	}
	sz := ggufFixedSize(t)
	if sz == 0 {
		return nil, badGGUF("unknown value type %d", t)
	}
	b, err := r.read(int(sz))
	if err != nil {
		return nil, err
	}
	switch t {
	case ggufUint8:
		return b[0], nil
	case ggufInt8:
		return int8(b[0]), nil
	case ggufBool:
		if b[0] > 1 {
			return nil, badGGUF("bool value %d", b[0])
		}
		return b[0] == 1, nil
	case ggufUint16:
		return binary.LittleEndian.Uint16(b), nil
	case ggufInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case ggufUint32:
		return binary.LittleEndian.Uint32(b), nil
	case ggufInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case ggufFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case ggufUint64:
		return binary.LittleEndian.Uint64(b), nil
	case ggufInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // ggufFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

// array checks an array value (element type, count, elements) and returns
// its summary.
func (r *ggufReader) array(depth int) (any, error) {
	if depth > MaxGGUFDepth {
		return nil, badGGUF("arrays nested deeper than %d", MaxGGUFDepth)
	}
	et, err := r.u32()
	if err != nil {
		return nil, err
	}
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	if int(et) >= len(ggufTypeNames) {
		return nil, badGGUF("unknown array element type %d", et)
	}
	out := GGUFSkipped{Type: "[]" + ggufTypeNames[et], Len: n}
	if sz := ggufFixedSize(et); sz != 0 {
		if n > r.left()/sz {
			return nil, r.pastLimit()
		}
		if et == ggufBool {
			err = r.bools(n)
		} else {
			err = r.skip(n * sz)
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	// Each string is at least 8 bytes, each array 12: n is bounded by the
	// bytes left before a byte is read.
	minSize := uint64(8)
	if et == ggufArray {
		minSize = 12
	}
	if n > r.left()/minSize {
		return nil, r.pastLimit()
	}
	for range n {
		if et == ggufString {
			if _, _, err := r.str(0); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := r.array(depth + 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseGGUF reads and validates the header of a GGUF file of the given
// size. Valid means (SPEC.md §2): magic "GGUF"; version 2 or 3; at most
// MaxGGUFTensors tensors and MaxGGUFKV keys; keys non-empty, distinct and
// at most MaxGGUFKey bytes; values of known types (arrays nested at most
// MaxGGUFDepth deep, bools 0 or 1); general.alignment, if present, a
// uint32 power of two; tensor names non-empty, distinct and at most
// MaxGGUFTensorName bytes; at most MaxGGUFDims dimensions, each below
// 2^63; a known ggml type whose block size divides the first dimension;
// offsets multiples of the alignment; the header within MaxGGUFHeader
// bytes and the data section start (the end of the tensor infos rounded
// up to the alignment) within the file; and, sorted by offset, the first
// tensor at the data section start and each beginning at or after the end
// of the one before and ending within the file. Errors wrap ErrBadGGUF.
func ParseGGUF(r io.ReaderAt, size int64) (*GGUF, error) {
	if size < 0 {
		return nil, badGGUF("negative size")
	}
	rd := &ggufReader{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10), limit: min(size, MaxGGUFHeader)}
	magic, err := rd.read(4)
	if err != nil {
		return nil, err
	}
	if string(magic) != "GGUF" {
		return nil, badGGUF("no GGUF magic")
	}
	g := &GGUF{Alignment: GGUFDefaultAlignment, Meta: map[string]any{}}
	if g.Version, err = rd.u32(); err != nil {
		return nil, err
	}
	if g.Version != 2 && g.Version != 3 {
		return nil, badGGUF("version %d (read: 2 and 3, little-endian)", g.Version)
	}
	nt, err := rd.u64()
	if err != nil {
		return nil, err
	}
	nkv, err := rd.u64()
	if err != nil {
		return nil, err
	}
	if nt > MaxGGUFTensors || nkv > MaxGGUFKV {
		return nil, badGGUF("%d tensors and %d keys (at most %d and %d)", nt, nkv, MaxGGUFTensors, MaxGGUFKV)
	}
	for range nkv {
		if err := rd.kv(g); err != nil {
			return nil, err
		}
	}
	g.InfoStart = rd.pos
	// A tensor info takes at least 25 bytes: room is made for no more
	// than the rest of the header can hold.
	g.Tensors = make([]GGUFTensor, 0, min(nt, rd.left()/25))
	for range nt {
		t, err := rd.tensor(g)
		if err != nil {
			return nil, err
		}
		g.Tensors = append(g.Tensors, t)
	}
	slices.SortFunc(g.Tensors, func(a, b GGUFTensor) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(g.Tensors); i++ {
		if g.Tensors[i].Name == g.Tensors[i-1].Name {
			return nil, badGGUF("duplicate tensor %s", Quote(g.Tensors[i].Name))
		}
	}
	g.DataStart = (rd.pos + g.Alignment - 1) &^ (g.Alignment - 1)
	if g.DataStart > size {
		return nil, badGGUF("data section starts at %d, past the end of the file (%d bytes)", g.DataStart, size)
	}
	for i := range g.Tensors {
		t := &g.Tensors[i]
		if t.Off > size-g.DataStart { // t.Off is still relative
			return nil, badGGUF("tensor %s starts past the end of the file", Quote(t.Name))
		}
		t.Off += g.DataStart
	}
	slices.SortFunc(g.Tensors, func(a, b GGUFTensor) int {
		return cmp.Or(cmp.Compare(a.Off, b.Off), cmp.Compare(a.Size, b.Size), strings.Compare(a.Name, b.Name))
	})
	at := g.DataStart
	for i, t := range g.Tensors {
		switch {
		case i == 0 && t.Off != g.DataStart:
			return nil, badGGUF("first tensor %s at %d, not at the data section start %d", Quote(t.Name), t.Off, g.DataStart)
		case t.Off < at:
			return nil, badGGUF("tensor %s overlaps the one before", Quote(t.Name))
		case t.Size > size-t.Off:
			return nil, badGGUF("tensor %s (%d bytes at %d) ends past the end of the file", Quote(t.Name), t.Size, t.Off)
		}
		at = t.Off + t.Size
	}
	return g, nil
}

// kv reads one metadata key and value into g.Meta.
func (r *ggufReader) kv(g *GGUF) error {
	key, n, err := r.str(MaxGGUFKey)
	if err != nil {
		return err
	}
	if n == 0 || n > MaxGGUFKey {
		return badGGUF("metadata key of %d bytes (1 to %d)", n, MaxGGUFKey)
	}
	if _, dup := g.Meta[key]; dup {
		return badGGUF("duplicate key %s", Quote(key))
	}
	t, err := r.u32()
	if err != nil {
		return err
	}
	v, err := r.value(t, 0)
	if err != nil {
		return fmt.Errorf("%w (key %s)", err, Quote(key))
	}
	g.Meta[key] = v
	if key == "general.alignment" {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return badGGUF("general.alignment %v is not a uint32 power of two", v)
		}
		g.Alignment = int64(a)
	}
	return nil
}

// tensor reads one tensor info. Its Off is relative to the data section.
func (r *ggufReader) tensor(g *GGUF) (GGUFTensor, error) {
	name, n, err := r.str(MaxGGUFTensorName)
	if err != nil {
		return GGUFTensor{}, err
	}
	if n == 0 || n > MaxGGUFTensorName {
		return GGUFTensor{}, badGGUF("tensor name of %d bytes (1 to %d)", n, MaxGGUFTensorName)
	}
	bad := func(f string, a ...any) (GGUFTensor, error) {
		return GGUFTensor{}, badGGUF("tensor %s: "+f, append([]any{Quote(name)}, a...)...)
	}
	nd, err := r.u32()
	if err != nil {
		return GGUFTensor{}, err
	}
	if nd > MaxGGUFDims {
		return bad("%d dimensions (at most %d)", nd, MaxGGUFDims)
	}
	shape := make([]uint64, nd)
	for i := range shape {
		if shape[i], err = r.u64(); err != nil {
			return GGUFTensor{}, err
		}
		if shape[i] > math.MaxInt64 {
			return bad("dimension %d too large", shape[i])
		}
	}
	typ, err := r.u32()
	if err != nil {
		return GGUFTensor{}, err
	}
	off, err := r.u64()
	if err != nil {
		return GGUFTensor{}, err
	}
	tt, ok := ggmlTypes[typ]
	if !ok {
		return bad("unknown ggml type %d", typ)
	}
	if off%uint64(g.Alignment) != 0 {
		return bad("offset %d is not a multiple of the alignment %d", off, g.Alignment)
	}
	if off > math.MaxInt64 {
		return bad("offset %d too large", off)
	}
	// Bytes: blocks of the first dimension (1 for a scalar) times the
	// type size, times the other dimensions; a size past 2^63 is refused
	// (no file is that large).
	ne0 := uint64(1)
	if len(shape) > 0 {
		ne0 = shape[0]
	}
	if ne0%tt.block != 0 {
		return bad("first dimension %d is not a multiple of %s's block size %d", ne0, tt.name, tt.block)
	}
	hi, size := bits.Mul64(ne0/tt.block, tt.size)
	for _, d := range shape[min(1, len(shape)):] {
		var h uint64
		h, size = bits.Mul64(size, d)
		hi |= h
	}
	if slices.Contains(shape, 0) {
		size, hi = 0, 0 // an empty tensor, however large its other dimensions
	}
	if hi != 0 || size > math.MaxInt64 {
		return bad("byte size of shape %v overflows", shape)
	}
	return GGUFTensor{Name: name, Type: tt.name, Shape: shape, Off: int64(off), Size: int64(size)}, nil
}

// ggufPlan cuts a GGUF file: its header run, then one run per tensor from
// its offset to the next tensor's (or the end of the file).
func ggufPlan(r io.ReaderAt, size int64) ([]Span, error) {
	g, err := ParseGGUF(r, size)
	if err != nil {
		return nil, err
	}
	spans := FixedSpans(nil, 0, g.DataStart)
	if len(g.Tensors) == 0 {
		return FixedSpans(spans, g.DataStart, size-g.DataStart), nil
	}
	for k, t := range g.Tensors {
		next := size
		if k+1 < len(g.Tensors) {
			next = g.Tensors[k+1].Off
		}
		spans = FixedSpans(spans, t.Off, next-t.Off)
	}
	return spans, nil
}
