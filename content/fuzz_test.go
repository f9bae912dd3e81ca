package content

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

func FuzzDecodeRoot(f *testing.F) {
	dir := f.TempDir()
	if _, err := testmodel.Folder(dir, 1, 9); err != nil {
		f.Fatal(err)
	}
	im, err := Import(f.Context(), dir, ImportOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range im.Blocks {
		f.Add(b.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRoot(data)
		if err != nil {
			return
		}
		// Whatever decodes encodes back to the same bytes.
		again, err := encMode.Marshal(r)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("root does not round-trip")
		}
		// File and chunk list decoders take any block for any root.
		_, _ = DecodeFileList(r, 0, data)
		_, _ = DecodeChunkList(r, 0, data)
	})
}

func FuzzDecodeLists(f *testing.F) {
	dir := f.TempDir()
	if _, err := testmodel.Folder(dir, 1, 9); err != nil {
		f.Fatal(err)
	}
	im, err := Import(f.Context(), dir, ImportOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range im.Blocks[1:] {
		f.Add(b.Data, uint16(len(im.M.Files)), uint16(len(im.M.Chunks)))
	}
	f.Fuzz(func(t *testing.T, data []byte, nf, nc uint16) {
		r := &Root{NFiles: uint64(nf), NChunks: uint64(nc)}
		if files, err := DecodeFileList(r, 0, data); err == nil {
			if uint64(len(files)) > uint64(nf) {
				t.Fatal("more files than declared")
			}
			_, _ = NewManifest(SumCID(CodecDagCBOR, data), files, nil)
		}
		if chunks, err := DecodeChunkList(r, 0, data); err == nil {
			for _, c := range chunks {
				if c.Len == 0 || c.Len > MaxChunk || CheckCID(c.CID.Cid) != nil {
					t.Fatal("bad chunk ref accepted")
				}
			}
		}
	})
}

func FuzzSafetensorsHeader(f *testing.F) {
	f.Add([]byte(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`), int64(4))
	f.Add([]byte(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`), int64(2))
	f.Add([]byte(`{}`), int64(0))
	f.Fuzz(func(t *testing.T, hdr []byte, dataLen int64) {
		ts, err := ParseSafetensorsHeader(hdr, dataLen)
		if err != nil {
			return
		}
		var at int64
		for _, x := range ts {
			if x.Begin != at || x.End < x.Begin {
				t.Fatalf("accepted header with bad ranges: %+v", ts)
			}
			at = x.End
		}
		if at != dataLen {
			t.Fatal("accepted header not covering the data")
		}
	})
}

func FuzzParseCID(f *testing.F) {
	f.Add("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am")
	f.Add("bafyreigdr7p32actjl2ytbevndqfucb7lgphqphlj2r2ztvqtxarsgypwa")
	f.Add("QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err != nil {
			return
		}
		if _, err := CastCID(c.Bytes()); err != nil {
			t.Fatalf("parsed CID does not cast back: %v", err)
		}
	})
}

func FuzzCheckPaths(f *testing.F) {
	f.Add("a/b", "A/c")
	f.Add("../x", "y")
	f.Fuzz(func(t *testing.T, a, b string) {
		if CheckPaths([]string{a, b}) != nil {
			return
		}
		for _, p := range []string{a, b} {
			if p == "" || p[0] == '/' || bytes.Contains([]byte("/"+p+"/"), []byte("/../")) {
				t.Fatalf("unsafe path %q accepted", p)
			}
		}
	})
}

// fuzzGGUFSeed is a small valid GGUF file for FuzzGGUF: tiny tensors of
// three types, one empty, arrays in the metadata.
func fuzzGGUFSeed() []byte {
	return testmodel.GGUF(goldenGGUFMeta("fuzz"), []testmodel.GGUFTensor{
		{Name: "a", Type: "F32", Shape: []uint64{3}},
		{Name: "b", Type: "Q8_0", Shape: []uint64{32, 2}},
		{Name: "e", Type: "F16", Shape: []uint64{0, 4}},
		{Name: "c", Type: "F16", Shape: []uint64{5, 1, 1}},
	}, 1)
}

func FuzzGGUF(f *testing.F) {
	f.Add(fuzzGGUFSeed())
	f.Add(testmodel.GGUF([]testmodel.GGUFKV{{Key: "general.alignment", Value: uint32(8)}}, []testmodel.GGUFTensor{{Name: "x", Type: "BF16", Shape: []uint64{3}}}, 2))
	f.Add([]byte("GGUF\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		g, err := ParseGGUF(bytes.NewReader(data), size)
		ch := Plan("f.gguf", bytes.NewReader(data), size)
		// Whatever the header, the spans tile the file.
		starts := checkTiling(t, ch.Spans, size)
		if err != nil {
			if !errors.Is(err, ErrBadGGUF) || ch.Layout != LayoutFixed || !errors.Is(ch.Fallback, ErrBadGGUF) {
				t.Fatalf("err %v, layout %v, fallback %v", err, ch.Layout, ch.Fallback)
			}
			return
		}
		if ch.Layout != LayoutGGUF || ch.Fallback != nil {
			t.Fatalf("valid header cut as %v (%v)", ch.Layout, ch.Fallback)
		}
		a := g.Alignment
		if a <= 0 || a&(a-1) != 0 || g.DataStart%a != 0 || g.DataStart > size || (size > 0 && !starts[0]) {
			t.Fatalf("alignment %d, data start %d of %d", a, g.DataStart, size)
		}
		if g.DataStart < size && !starts[g.DataStart] {
			t.Fatal("the data section starts no chunk")
		}
		end := g.DataStart
		for i, tn := range g.Tensors {
			if (i == 0 && tn.Off != g.DataStart) || tn.Off < end || (tn.Off-g.DataStart)%a != 0 || tn.Size < 0 || tn.Size > size-tn.Off {
				t.Fatalf("accepted tensor %+v after %d", tn, end)
			}
			if tn.Size > 0 && !starts[tn.Off] {
				t.Fatalf("tensor %+v starts no chunk", tn)
			}
			if len(tn.Name) == 0 || len(tn.Name) > MaxGGUFTensorName || len(tn.Shape) > MaxGGUFDims {
				t.Fatalf("accepted tensor %+v", tn)
			}
			end = tn.Off + tn.Size
		}
	})
}
