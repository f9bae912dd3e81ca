package content

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

// goldenGGUFTensors are the tensors of the golden GGUF file: two larger
// than a chunk, some tiny, of F32, F16 and Q8_0, most sizes not multiples
// of the alignment (so padding follows them).
var goldenGGUFTensors = []testmodel.GGUFTensor{
	{Name: "token_embd.weight", Type: "F16", Shape: []uint64{768, 1000}},        // 1,536,000 bytes
	{Name: "blk.0.attn_norm.weight", Type: "F32", Shape: []uint64{7}},           // 28
	{Name: "blk.0.ffn_up.weight", Type: "Q8_0", Shape: []uint64{4096, 300}},     // 1,305,600
	{Name: "blk.0.ffn_norm.weight", Type: "F32", Shape: []uint64{64}},           // 256
	{Name: "output.weight", Type: "Q8_0", Shape: []uint64{64, 10}},              // 680
	{Name: "rope_freqs", Type: "F32", Shape: []uint64{3, 1, 1}},                 // 12
	{Name: "blk.0.attn_q.weight", Type: "F16", Shape: []uint64{512, 512, 1, 1}}, // 524,288
	{Name: "blk.0.empty", Type: "F32", Shape: []uint64{0, 16}},                  // 0
	{Name: "blk.0.attn_k.weight", Type: "F16", Shape: []uint64{100, 3}},         // 600
}

// goldenGGUFMeta is the golden GGUF file's metadata, with general.name
// given.
func goldenGGUFMeta(name string) []testmodel.GGUFKV {
	return []testmodel.GGUFKV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: name},
		{Key: "general.file_type", Value: uint32(7)},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.ggml.tokens", Value: []string{"<s>", "</s>", "hello", "world"}},
		{Key: "tokenizer.ggml.token_type", Value: []int32{3, 3, 1, 1}},
	}
}

func goldenGGUF(name string) []byte {
	return testmodel.GGUF(goldenGGUFMeta(name), goldenGGUFTensors, 7)
}

func TestParseGGUF(t *testing.T) {
	data := goldenGGUF("shoal-test")
	g, err := ParseGGUF(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if g.Version != 3 || g.Alignment != 32 || g.DataStart%32 != 0 || g.DataStart <= 24 {
		t.Fatalf("version %d alignment %d data start %d", g.Version, g.Alignment, g.DataStart)
	}
	if g.MetaString("general.architecture") != "llama" || g.MetaString("general.name") != "shoal-test" {
		t.Errorf("meta = %v", g.Meta)
	}
	if g.Meta["general.file_type"] != uint32(7) || g.Meta["llama.rope.freq_base"] != float32(10000) || g.Meta["tokenizer.ggml.add_bos_token"] != true {
		t.Errorf("meta = %v", g.Meta)
	}
	if got := g.Meta["tokenizer.ggml.tokens"]; got != (GGUFSkipped{Type: "[]string", Len: 4}) {
		t.Errorf("tokens = %#v", got)
	}
	if len(g.Tensors) != len(goldenGGUFTensors) {
		t.Fatalf("%d tensors", len(g.Tensors))
	}
	// The generator writes tensors in order, each at the next aligned
	// offset; the parser sorts by offset, so the orders agree but for the
	// zero-size tensor, which shares its offset with the next one and
	// sorts first.
	want := map[string]GGUFTensor{}
	off := g.DataStart
	for _, tm := range goldenGGUFTensors {
		sz := testmodel.GGUFTensorSize(tm.Type, tm.Shape)
		want[tm.Name] = GGUFTensor{Name: tm.Name, Type: tm.Type, Shape: tm.Shape, Off: off, Size: sz}
		off += (sz + 31) &^ 31
	}
	if off != int64(len(data)) {
		t.Fatalf("generator wrote %d bytes, tensors end at %d", len(data), off)
	}
	var prev int64
	for _, got := range g.Tensors {
		w := want[got.Name]
		if got.Type != w.Type || got.Off != w.Off || got.Size != w.Size || len(got.Shape) != len(w.Shape) {
			t.Errorf("tensor %+v, want %+v", got, w)
		}
		for i := range w.Shape {
			if got.Shape[i] != w.Shape[i] {
				t.Errorf("tensor %s shape %v, want %v", got.Name, got.Shape, w.Shape)
			}
		}
		if got.Off < prev {
			t.Errorf("tensors not sorted by offset")
		}
		prev = got.Off
	}
	// The type table: a few values checked against ggml's block layouts.
	for typ, w := range map[uint32][2]uint64{0: {1, 4}, 1: {1, 2}, 8: {32, 34}, 9: {32, 36}, 12: {256, 144}, 14: {256, 210}, 23: {256, 136}, 30: {1, 2}, 34: {256, 54}, 35: {256, 66}} {
		if tt := ggmlTypes[typ]; tt.block != w[0] || tt.size != w[1] {
			t.Errorf("ggml type %d (%s) = %d/%d, want %d/%d", typ, tt.name, tt.block, tt.size, w[0], w[1])
		}
	}
}

func TestGGUFChunking(t *testing.T) {
	data := goldenGGUF("shoal-test")
	size := int64(len(data))
	ch := Plan("Model-Q8_0.GGUF", bytes.NewReader(data), size)
	if ch.Fallback != nil || ch.Layout != LayoutGGUF || ch.Layout.String() != "gguf" {
		t.Fatalf("layout %v fallback %v", ch.Layout, ch.Fallback)
	}
	g, _ := ParseGGUF(bytes.NewReader(data), size)
	// The rule, written out: header run, then each tensor to the next
	// tensor's offset (the last to the end of the file).
	want := FixedSpans(nil, 0, g.DataStart)
	for k, tn := range g.Tensors {
		next := size
		if k+1 < len(g.Tensors) {
			next = g.Tensors[k+1].Off
		}
		want = FixedSpans(want, tn.Off, next-tn.Off)
	}
	if len(ch.Spans) != len(want) {
		t.Fatalf("spans %v, want %v", ch.Spans, want)
	}
	for i := range want {
		if ch.Spans[i] != want[i] {
			t.Fatalf("span %d = %v, want %v", i, ch.Spans[i], want[i])
		}
	}
	// The spans tile the file, none longer than a chunk, and every
	// non-empty tensor starts one.
	starts := checkTiling(t, ch.Spans, size)
	for _, tn := range g.Tensors {
		if tn.Size > 0 && !starts[tn.Off] {
			t.Errorf("tensor %s at %d starts no chunk", tn.Name, tn.Off)
		}
	}
	// Eight non-empty tensors, two of them more than a chunk: 1 header
	// chunk, 8 tensor runs, 2 continuation chunks.
	if len(ch.Spans) != 1+8+2 {
		t.Errorf("%d spans", len(ch.Spans))
	}
}

// TestGGUFMetadataEdit: two files differing only in metadata (a longer
// general.name moves the data section) share every tensor chunk.
func TestGGUFMetadataEdit(t *testing.T) {
	a := goldenGGUF("shoal-test")
	b := goldenGGUF("shoal-test, renamed with a much longer name than before")
	ga, _ := ParseGGUF(bytes.NewReader(a), int64(len(a)))
	gb, _ := ParseGGUF(bytes.NewReader(b), int64(len(b)))
	if ga == nil || gb == nil || ga.DataStart == gb.DataStart {
		t.Fatal("the metadata edit did not move the data section")
	}
	dir := t.TempDir()
	ia := importPath(t, writeFile(t, dir, "a/model.gguf", a))
	ib := importPath(t, writeFile(t, dir, "b/model.gguf", b))
	ca, cb := ia.M.Chunks, ib.M.Chunks
	if len(ca) != len(cb) || len(ca) < 3 {
		t.Fatalf("%d and %d chunks", len(ca), len(cb))
	}
	if ca[0] == cb[0] {
		t.Error("header chunks equal though the headers differ")
	}
	for i := 1; i < len(ca); i++ {
		if ca[i] != cb[i] {
			t.Errorf("tensor chunk %d differs", i)
		}
	}
	// Cut at fixed 1 MiB instead, the shift changes every chunk: the
	// property above is the GGUF rule's doing.
	fa := importPath(t, writeFile(t, dir, "a/model.bin", a))
	fb := importPath(t, writeFile(t, dir, "b/model.bin", b))
	for i := range min(len(fa.M.Chunks), len(fb.M.Chunks)) {
		if fa.M.Chunks[i] == fb.M.Chunks[i] {
			t.Errorf("fixed chunk %d shared after a shift", i)
		}
	}
}

// TestGGUFSplitFiles imports two split files of one model from one folder:
// each is cut on its own tensors, and each tensor's chunks are those it has
// in the unsplit file.
func TestGGUFSplitFiles(t *testing.T) {
	meta := func(no uint16) []testmodel.GGUFKV {
		return append(goldenGGUFMeta("shoal-test"),
			testmodel.GGUFKV{Key: "split.no", Value: no},
			testmodel.GGUFKV{Key: "split.count", Value: uint16(3)},
			testmodel.GGUFKV{Key: "split.tensors.count", Value: int32(len(goldenGGUFTensors))})
	}
	// Tensor i is filled from seed+i: give each part the seed that makes
	// its tensors the unsplit file's.
	parts := [][]byte{
		testmodel.GGUF(meta(0), goldenGGUFTensors[:3], 7),
		testmodel.GGUF(meta(1), goldenGGUFTensors[3:], 7+3),
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	writeFile(t, model, "m-00001-of-00003.gguf", parts[0])
	writeFile(t, model, "m-00002-of-00003.gguf", parts[1])
	whole := goldenGGUF("shoal-test")
	writeFile(t, model, "whole.gguf", whole)
	im := importPath(t, model)
	if len(im.Warnings) != 0 || len(im.M.Files) != 3 {
		t.Fatalf("files %d warnings %v", len(im.M.Files), im.Warnings)
	}
	wholeChunks := map[ChunkRef]bool{}
	for _, c := range im.M.FileChunks(2)[1:] { // whole.gguf sorts last; skip its header
		wholeChunks[c] = true
	}
	for i, p := range parts {
		ch := Plan(im.M.Files[i].Path, bytes.NewReader(p), int64(len(p)))
		if ch.Layout != LayoutGGUF || ch.Fallback != nil {
			t.Fatalf("part %d: layout %v fallback %v", i, ch.Layout, ch.Fallback)
		}
		refs := im.M.FileChunks(i)
		if len(refs) != len(ch.Spans) {
			t.Fatalf("part %d: %d chunks for %d spans", i, len(refs), len(ch.Spans))
		}
		for k, sp := range ch.Spans {
			if refs[k].CID.Cid != SumCID(CodecRaw, p[sp.Off:sp.Off+sp.Len]) {
				t.Fatalf("part %d chunk %d is not span %v", i, k, sp)
			}
			if k > 0 && !wholeChunks[refs[k]] {
				t.Errorf("part %d chunk %d (%v) is not a chunk of the unsplit file", i, k, sp)
			}
		}
	}
}

// ggufField finds the tensor info of name in a generated file and returns
// the offsets of its type and offset fields.
func ggufField(t *testing.T, data []byte, name string) (typ, off int) {
	t.Helper()
	key := append(binary.LittleEndian.AppendUint64(nil, uint64(len(name))), name...)
	i := bytes.Index(data, key)
	if i < 0 {
		t.Fatalf("no tensor %s", name)
	}
	p := i + len(key)
	nd := int(binary.LittleEndian.Uint32(data[p:]))
	typ = p + 4 + 8*nd
	return typ, typ + 4
}

func TestGGUFRefusals(t *testing.T) {
	le := binary.LittleEndian
	base := goldenGGUF("shoal-test")
	edit := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(base))
	}
	setOff := func(name string, v uint64) []byte {
		return edit(func(b []byte) []byte {
			_, o := ggufField(t, b, name)
			le.PutUint64(b[o:], v)
			return b
		})
	}
	relOff := func(name string) uint64 {
		_, o := ggufField(t, base, name)
		return le.Uint64(base[o:])
	}
	// A header with only the counts, then the given bytes.
	hdr := func(version uint32, nt, nkv uint64, rest ...byte) []byte {
		b := le.AppendUint32([]byte("GGUF"), version)
		b = le.AppendUint64(le.AppendUint64(b, nt), nkv)
		return append(append(b, rest...), make([]byte, 4096)...)
	}
	str := func(b []byte, s string) []byte { return append(le.AppendUint64(b, uint64(len(s))), s...) }
	kv := func(key string, typ uint32, val ...byte) []byte {
		return append(le.AppendUint32(str(nil, key), typ), val...)
	}
	one := func(kvs []testmodel.GGUFKV, ts ...testmodel.GGUFTensor) []byte { return testmodel.GGUF(kvs, ts, 1) }
	f32 := func(name string) testmodel.GGUFTensor {
		return testmodel.GGUFTensor{Name: name, Type: "F32", Shape: []uint64{8}}
	}
	cases := map[string]struct {
		data []byte
		why  string
	}{
		"overlap":        {setOff("blk.0.ffn_up.weight", relOff("token_embd.weight")+64), "overlaps"},
		"out of file":    {setOff("output.weight", 1<<40), "past the end"},
		"ends past file": {setOff("blk.0.attn_k.weight", relOff("blk.0.attn_k.weight")+64), "ends past the end"},
		"misaligned":     {setOff("output.weight", relOff("output.weight")+4), "not a multiple of the alignment"},
		"gap at start": {func() []byte {
			b := append(one(nil, f32("t")), make([]byte, 32)...)
			_, o := ggufField(t, b, "t")
			le.PutUint64(b[o:], 32)
			return b
		}(), "not at the data section start"},
		"offset > 2^63": {setOff("output.weight", 1<<63), "too large"},
		"unknown type": {edit(func(b []byte) []byte {
			ty, _ := ggufField(t, b, "output.weight")
			le.PutUint32(b[ty:], 4) // Q4_2, removed from ggml
			return b
		}), "unknown ggml type 4"},
		"truncated":         {base[:200], "past the end of the file"},
		"empty":             {nil, "past the end of the file"},
		"bad magic":         {append([]byte("GGUG"), base[4:]...), "magic"},
		"version 1":         {hdr(1, 0, 0), "version 1"},
		"big-endian":        {hdr(3<<24, 0, 0), "version"},
		"huge tensor count": {hdr(3, 1<<40, 0), "tensors"},
		"huge key count":    {hdr(3, 0, math.MaxUint64), "keys"},
		"huge string":       {hdr(3, 0, 1, le.AppendUint64(nil, 1<<62)...), "past the end"},
		"huge array":        {hdr(3, 0, 1, le.AppendUint64(kv("a", 9, le.AppendUint32(nil, 8)...), 1<<60)...), "past the end"},
		"huge u64 array":    {hdr(3, 0, 1, le.AppendUint64(kv("a", 9, le.AppendUint32(nil, 10)...), 1<<61)...), "past the end"},
		"deep arrays": {hdr(3, 0, 1, func() []byte {
			b := kv("a", 9)
			for range 6 {
				b = le.AppendUint64(le.AppendUint32(b, 9), 1)
			}
			return b
		}()...), "nested"},
		"bad value type":   {hdr(3, 0, 1, kv("a", 13)...), "unknown value type"},
		"bad bool":         {hdr(3, 0, 1, kv("a", 7, 2)...), "bool"},
		"bad bool array":   {hdr(3, 0, 1, append(le.AppendUint64(kv("a", 9, le.AppendUint32(nil, 7)...), 3), 0, 1, 2)...), "bool"},
		"empty key":        {hdr(3, 0, 1, kv("", 0, 1)...), "key"},
		"long key":         {hdr(3, 0, 1, kv(strings.Repeat("k", MaxGGUFKey+1), 0, 1)...), "key"},
		"duplicate key":    {one([]testmodel.GGUFKV{{Key: "a", Value: "x"}, {Key: "a", Value: "y"}}, f32("t")), "duplicate key"},
		"duplicate tensor": {one(nil, f32("t"), f32("t")), "duplicate tensor"},
		"long tensor name": {one(nil, f32(strings.Repeat("n", MaxGGUFTensorName+1))), "tensor name"},
		"alignment 48":     {one([]testmodel.GGUFKV{{Key: "general.alignment", Value: uint32(48)}}, f32("t")), "power of two"},
		"alignment 0":      {hdr(3, 0, 1, kv("general.alignment", 4, 0, 0, 0, 0)...), "power of two"},
		"alignment u64":    {one([]testmodel.GGUFKV{{Key: "general.alignment", Value: uint64(32)}}, f32("t")), "power of two"},
		"five dims":        {one(nil, testmodel.GGUFTensor{Name: "t", Type: "F32", Shape: []uint64{1, 1, 1, 1, 1}}), "dimensions"},
		"block size": {edit(func(b []byte) []byte {
			ty, _ := ggufField(t, b, "blk.0.attn_k.weight") // 100 elements: F16 fits, Q8_0 does not
			le.PutUint32(b[ty:], 8)
			return b
		}), "block size"},
		"size overflow": {hdr(3, 1, 0, func() []byte {
			b := le.AppendUint32(str(nil, "t"), 4)
			for _, d := range []uint64{1 << 62, 1 << 62, 1, 1} {
				b = le.AppendUint64(b, d)
			}
			return le.AppendUint64(le.AppendUint32(b, 0), 0)
		}()...), "overflows"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := ParseGGUF(bytes.NewReader(tc.data), int64(len(tc.data)))
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrBadGGUF) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %v, want ErrBadGGUF saying %q", err, tc.why)
			}
			if n := ms1.TotalAlloc - ms0.TotalAlloc; n > 1<<20 {
				t.Errorf("refusing it allocated %d bytes", n)
			}
			ch := Plan("x.gguf", bytes.NewReader(tc.data), int64(len(tc.data)))
			if ch.Layout != LayoutFixed || !errors.Is(ch.Fallback, ErrBadGGUF) {
				t.Fatalf("layout %v fallback %v", ch.Layout, ch.Fallback)
			}
			want := FixedSpans(nil, 0, int64(len(tc.data)))
			if len(ch.Spans) != len(want) || (len(want) > 0 && ch.Spans[len(want)-1] != want[len(want)-1]) {
				t.Fatalf("fallback spans %v, want %v", ch.Spans, want)
			}
		})
	}
	// A lying header is still imported, as a plain file, with a warning.
	im := importPath(t, writeFile(t, t.TempDir(), "x.gguf", cases["overlap"].data))
	if len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0].Reason, "overlaps") {
		t.Fatalf("warnings = %v", im.Warnings)
	}
}

func TestGGUFEdgeCases(t *testing.T) {
	// No tensors (a vocabulary-only file): the header run, then whatever
	// follows the data section start.
	vocab := testmodel.GGUF(goldenGGUFMeta("vocab"), nil, 1)
	vocab = append(vocab, testmodel.Bytes(3<<19, 2)...)
	ch := Plan("vocab.gguf", bytes.NewReader(vocab), int64(len(vocab)))
	g, err := ParseGGUF(bytes.NewReader(vocab), int64(len(vocab)))
	if err != nil || ch.Layout != LayoutGGUF {
		t.Fatalf("err %v layout %v", err, ch.Layout)
	}
	if ch.Spans[0] != (Span{0, g.DataStart}) || ch.Spans[1] != (Span{g.DataStart, MaxChunk}) || len(ch.Spans) != 3 {
		t.Fatalf("spans %v (data start %d)", ch.Spans, g.DataStart)
	}
	// A long string value is checked, not kept; so is an array of arrays.
	long := strings.Repeat("x", MaxGGUFMetaString+1)
	data := testmodel.GGUF([]testmodel.GGUFKV{{Key: "tokenizer.chat_template", Value: long}, {Key: "general.alignment", Value: uint32(64)}},
		[]testmodel.GGUFTensor{{Name: "t", Type: "Q8_0", Shape: []uint64{32}}}, 1)
	if g, err = ParseGGUF(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if g.Meta["tokenizer.chat_template"] != (GGUFSkipped{Type: "string", Len: uint64(len(long))}) || g.Alignment != 64 || g.DataStart%64 != 0 {
		t.Fatalf("meta %v alignment %d data start %d", g.Meta, g.Alignment, g.DataStart)
	}
	le := binary.LittleEndian
	nested := le.AppendUint32([]byte("GGUF"), 2)                // version 2,
	nested = le.AppendUint64(le.AppendUint64(nested, 0), 1)     // no tensor, one key:
	nested = append(le.AppendUint64(nested, 1), 'a')            // "a",
	nested = le.AppendUint32(nested, 9)                         // an array
	nested = le.AppendUint64(le.AppendUint32(nested, 9), 2)     // of 2 arrays,
	nested = le.AppendUint64(le.AppendUint32(nested, 4), 1)     // one of 1 uint32,
	nested = le.AppendUint32(nested, 7)                         //
	nested = le.AppendUint64(le.AppendUint32(nested, 8), 1)     // one of 1 string.
	nested = append(le.AppendUint64(nested, 2), "hi"...)        //
	nested = append(nested, make([]byte, 32-len(nested)%32)...) // Pad to the data start.
	if g, err = ParseGGUF(bytes.NewReader(nested), int64(len(nested))); err != nil {
		t.Fatal(err)
	}
	if g.Version != 2 || g.Meta["a"] != (GGUFSkipped{Type: "[]array", Len: 2}) || g.DataStart != int64(len(nested)) {
		t.Fatalf("version %d meta %v data start %d of %d", g.Version, g.Meta, g.DataStart, len(nested))
	}
	// An empty tensor is empty however large its other dimensions.
	empty := testmodel.GGUF(nil, []testmodel.GGUFTensor{{Name: "z", Type: "F32", Shape: []uint64{1 << 62, 1 << 62, 0}}}, 1)
	if g, err = ParseGGUF(bytes.NewReader(empty), int64(len(empty))); err != nil || g.Tensors[0].Size != 0 {
		t.Fatalf("empty tensor: %v", err)
	}
	// Plain names are not parsed; .gguf is matched in any case.
	for name, want := range map[string]bool{"a.gguf": true, "A.GGUF": true, "m-00001-of-00003.gguf": true, "a.gguf.part": false, "gguf": false, "a.ggml": false} {
		if IsGGUFName(name) != want {
			t.Errorf("IsGGUFName(%q) = %v", name, !want)
		}
	}
}

// TestOldChunkerRoots: a manifest made by chunker 1 still decodes and
// assembles (a model fetched before chunker 2 stays valid); an unknown
// chunker does not.
func TestOldChunkerRoots(t *testing.T) {
	dir := t.TempDir()
	im := importPath(t, writeFile(t, dir, "m/hello.txt", []byte("hello\n")))
	blocks := append([]Block(nil), im.Blocks...)
	root, err := DecodeRoot(blocks[0].Data)
	if err != nil || root.Chunker != ChunkerVersion || ChunkerVersion != 2 {
		t.Fatalf("root %+v err %v", root, err)
	}
	for _, v := range []uint64{0, 1, 2, 3} {
		r := *root
		r.Chunker = v
		b, err := EncodeBlock(r)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeRoot(b.Data)
		if ok := v >= MinChunkerVersion && v <= ChunkerVersion; ok != (err == nil) {
			t.Fatalf("chunker %d: err = %v", v, err)
		}
		if v != 1 {
			continue
		}
		blocks[0] = b
		m, _, err := AssembleManifest(b.CID, getter(blocks))
		if err != nil || m.Root != b.CID || len(m.Files) != 1 || m.Chunks[0] != im.M.Chunks[0] {
			t.Fatalf("chunker 1 manifest: %v", err)
		}
	}
}

// TestGGUFAtCaps: a header at every cap (the most keys, longest keys and
// kept strings, the most tensors with the longest names and most
// dimensions) parses within a bounded allocation; one tensor more is
// refused.
func TestGGUFAtCaps(t *testing.T) {
	var kvs []testmodel.GGUFKV
	for i := range MaxGGUFKV {
		key := strings.Repeat("k", MaxGGUFKey-4) + fmt.Sprintf("%04d", i)
		kvs = append(kvs, testmodel.GGUFKV{Key: key, Value: strings.Repeat("v", MaxGGUFMetaString)})
	}
	ts := make([]testmodel.GGUFTensor, MaxGGUFTensors+1)
	for i := range ts {
		// Empty tensors: all at offset 0, no data to write.
		ts[i] = testmodel.GGUFTensor{Name: strings.Repeat("n", MaxGGUFTensorName-5) + fmt.Sprintf("%05d", i), Type: "F32", Shape: []uint64{0, 1, 1, 1}}
	}
	data := testmodel.GGUF(kvs, ts[:MaxGGUFTensors], 1)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g, err := ParseGGUF(bytes.NewReader(data), int64(len(data)))
	runtime.ReadMemStats(&ms1)
	if err != nil || len(g.Tensors) != MaxGGUFTensors || len(g.Meta) != MaxGGUFKV {
		t.Fatalf("header at the caps: %v", err)
	}
	if n := ms1.TotalAlloc - ms0.TotalAlloc; n > 12<<20 {
		t.Errorf("parsing a %d-byte header at the caps allocated %d bytes", len(data), n)
	} else {
		t.Logf("parsing a %d-byte header at the caps allocated %d bytes", len(data), n)
	}
	more := testmodel.GGUF(nil, ts, 1)
	if _, err := ParseGGUF(bytes.NewReader(more), int64(len(more))); !errors.Is(err, ErrBadGGUF) {
		t.Fatalf("%d tensors: err = %v", len(ts), err)
	}
}

// checkTiling fails unless spans tile [0, size) in order, none empty or
// longer than a chunk, and returns where each starts.
func checkTiling(t *testing.T, spans []Span, size int64) map[int64]bool {
	t.Helper()
	starts := map[int64]bool{}
	var at int64
	for _, sp := range spans {
		if sp.Off != at || sp.Len < 1 || sp.Len > MaxChunk {
			t.Fatalf("span %v at %d", sp, at)
		}
		starts[sp.Off] = true
		at += sp.Len
	}
	if at != size {
		t.Fatalf("spans cover %d of %d bytes", at, size)
	}
	return starts
}
