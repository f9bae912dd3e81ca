package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

func writeFile(t *testing.T, dir, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func importPath(t *testing.T, p string) *Imported {
	t.Helper()
	im, err := Import(context.Background(), p, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// goldenTensors is the fixed safetensors input of the golden tests.
var goldenTensors = []testmodel.Tensor{{Name: "a", Size: 10}, {Name: "b", Size: 3 << 20}, {Name: "c", Size: 0}, {Name: "d", Size: 5000}}

// TestGoldenCIDs pins the recipe from bytes to CIDs. If this fails, the
// chunking rules or the manifest encoding changed: that is a new
// ChunkerVersion or FormatVersion, never a silent change. (Chunker 2 changed
// every root, the version being in it; the chunks of the first four files
// are those chunker 1 made.)
func TestGoldenCIDs(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
		// v1 is the root chunker 1 made: the same blocks with "chunker"
		// 1 in the root (none for GGUF, which chunker 1 cut at fixed
		// 1 MiB).
		v1 string
	}{
		{"empty.txt", nil, "bafyreibva5bvqayq4vivexqa772jbnrfaouwi4k5ahe4ciljkn3li7mtt4", "bafyreigdr7p32actjl2ytbevndqfucb7lgphqphlj2r2ztvqtxarsgypwa"},
		{"hello.txt", []byte("hello\n"), "bafyreieee34ykb775idmiswqxcjtu7hpevwo3llju43n6pn5otsxs2pxwm", "bafyreiebuscqu5xvdbnjtawcvbk7zre2eqg3orn3h7vghjw6qtiooot37u"},
		{"weights.bin", testmodel.Bytes(5<<19, 1), "bafyreib3fvoxqc3dsfjj2vy2u2xavrmasnp34ad7ykfch66u2y3amatjim", "bafyreicoegd37epvwlacsnp5s3cyw47qbsywqfzd6ssrxc5vdriyycd7cq"},
		{"model.safetensors", testmodel.Safetensors(goldenTensors, 7), "bafyreifesza6n65qwqazlcrhyznsnzi5dv4bykeltwuyan5l222272lcce", "bafyreic6a4jkwyukrooe4dak6sv2l4yjcw4d7n3uxktg3vliibvgrvp6ki"},
		{"model.gguf", goldenGGUF("shoal-test"), "bafyreienc4c5td2w5diuhqv2duvshp6zujzy5ui47vthg7zhqp4cr3nfwq", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), tc.name, tc.data)
			im := importPath(t, p)
			if got := im.M.Root.String(); got != tc.want {
				t.Errorf("root CID = %s, want %s", got, tc.want)
			}
			if tc.v1 == "" {
				return
			}
			r, err := DecodeRoot(im.Blocks[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			r.Chunker = 1
			if b, err := EncodeBlock(*r); err != nil || b.CID.String() != tc.v1 {
				t.Errorf("chunker 1 root CID = %s (%v), want %s", b.CID, err, tc.v1)
			}
		})
	}
	// The chunk CID of "hello\n" is what any IPFS tool computes for a raw
	// block of those bytes.
	if got := SumCID(CodecRaw, []byte("hello\n")).String(); got != "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" {
		t.Errorf("raw CID of hello = %s", got)
	}
}

func TestSafetensorsChunking(t *testing.T) {
	data := testmodel.Safetensors(goldenTensors, 7)
	ch := Plan("m.safetensors", bytes.NewReader(data), int64(len(data)))
	spans := ch.Spans
	if ch.Fallback != nil || ch.Layout != LayoutSafetensors {
		t.Fatalf("layout %v fallback %v", ch.Layout, ch.Fallback)
	}
	hlen := 8 + int64(binary.LittleEndian.Uint64(data))
	want := []Span{{0, hlen}, {hlen, 10}, {hlen + 10, 1 << 20}, {hlen + 10 + 1<<20, 1 << 20}, {hlen + 10 + 2<<20, 1 << 20}, {hlen + 10 + 3<<20, 5000}}
	if len(spans) != len(want) {
		t.Fatalf("spans %v, want %v", spans, want)
	}
	for i := range want {
		if spans[i] != want[i] {
			t.Fatalf("span %d = %v, want %v", i, spans[i], want[i])
		}
	}
	// The same tensor in two files is the same chunk.
	dir := t.TempDir()
	a := importPath(t, writeFile(t, dir, "a.safetensors", data))
	// Same bytes under a plain name are cut at fixed 1 MiB: different chunks.
	b := importPath(t, writeFile(t, dir, "a.bin", data))
	if a.M.Chunks[1].CID == b.M.Chunks[1].CID {
		t.Error("safetensors and fixed layouts gave the same second chunk")
	}
	if !bytes.Equal(a.M.Files[0].SHA256, b.M.Files[0].SHA256) {
		t.Error("whole-file sha256 differs between layouts")
	}
}

func TestSafetensorsHeaderRefusals(t *testing.T) {
	h := func(s string) []byte { return []byte(s) }
	cases := map[string]struct {
		hdr     []byte
		dataLen int64
	}{
		"not object":   {h(`[1,2]`), 0},
		"gap":          {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`), 2},
		"overlap":      {h(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`), 3},
		"short":        {h(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`), 3},
		"past end":     {h(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,4]}}`), 3},
		"reversed":     {h(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}`), 2},
		"duplicate":    {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`), 2},
		"no dtype":     {h(`{"a":{"shape":[1],"data_offsets":[0,1]}}`), 1},
		"no shape":     {h(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`), 1},
		"unknown key":  {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`), 1},
		"trailing":     {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x`), 1},
		"negative":     {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`), 1},
		"three offs":   {h(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`), 1},
		"bad metadata": {h(`{"__metadata__":{"a":1}}`), 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseSafetensorsHeader(tc.hdr, tc.dataLen); !errors.Is(err, ErrBadSafetensors) {
				t.Fatalf("err = %v, want ErrBadSafetensors", err)
			}
		})
	}
	if _, err := ParseSafetensorsHeader(h(`{"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}  `), 1); err != nil {
		t.Fatalf("valid header refused: %v", err)
	}
	// A huge declared header length: refused without reading it, and the
	// file is still imported, as a plain file, with a warning.
	bad := make([]byte, 4096)
	binary.LittleEndian.PutUint64(bad, 1<<40)
	im := importPath(t, writeFile(t, t.TempDir(), "x.safetensors", bad))
	if len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0].Reason, "header length") {
		t.Fatalf("warnings = %v", im.Warnings)
	}
}

func TestManifestSplitsLargeModels(t *testing.T) {
	// 20,000 chunks over 1,100 files: three chunk blocks and three file
	// blocks, every block at most MaxBlock, the root small.
	var files []File
	var chunks []ChunkRef
	for i := range 1100 {
		n := 20000*(i+1)/1100 - 20000*i/1100
		var sz uint64
		for j := range n {
			d := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(j)})
			chunks = append(chunks, ChunkRef{CID: Link{DigestCID(CodecRaw, d[:])}, Len: MaxChunk})
			sz += MaxChunk
		}
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		files = append(files, File{Path: "dir/file-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + strconv.Itoa(i), Size: sz, SHA256: sum[:], Chunks: uint64(n)})
	}
	m := &Manifest{Files: files, Chunks: chunks}
	blocks, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 1+3+3 {
		t.Fatalf("%d blocks", len(blocks))
	}
	if len(blocks[0].Data) > 1024 {
		t.Errorf("root block is %d bytes", len(blocks[0].Data))
	}
	for _, b := range blocks {
		if len(b.Data) > MaxBlock {
			t.Errorf("block of %d bytes", len(b.Data))
		}
	}
	got := decodeAll(t, blocks)
	if len(got.Files) != len(files) || len(got.Chunks) != len(chunks) || got.Root != m.Root {
		t.Fatalf("round trip lost data")
	}
	for i := range files {
		if got.Files[i].Path != files[i].Path || got.FileChunks(i)[0] != chunks[firstChunk(files, i)] {
			t.Fatalf("file %d differs", i)
		}
	}
}

func firstChunk(files []File, i int) int {
	n := 0
	for _, f := range files[:i] {
		n += int(f.Chunks)
	}
	return n
}

func decodeAll(t *testing.T, blocks []Block) *Manifest {
	t.Helper()
	m, got, err := AssembleManifest(blocks[0].CID, getter(blocks))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(blocks) {
		t.Fatalf("assembled from %d blocks, encoded %d", len(got), len(blocks))
	}
	return m
}

// getter serves blocks by CID.
func getter(blocks []Block) func(cid.Cid) ([]byte, error) {
	byCID := map[cid.Cid][]byte{}
	for _, b := range blocks {
		byCID[b.CID] = b.Data
	}
	return func(c cid.Cid) ([]byte, error) {
		if b, ok := byCID[c]; ok {
			return b, nil
		}
		return nil, ErrNotFound
	}
}

func TestManifestRefusals(t *testing.T) {
	sum := make([]byte, 32)
	c := ChunkRef{CID: Link{SumCID(CodecRaw, []byte("x"))}, Len: 1}
	cases := map[string]struct {
		files  []File
		chunks []ChunkRef
	}{
		"size mismatch":   {[]File{{Path: "a", Size: 2, SHA256: sum, Chunks: 1}}, []ChunkRef{c}},
		"too many chunks": {[]File{{Path: "a", Size: 1, SHA256: sum, Chunks: 2}}, []ChunkRef{c}},
		"unused chunks":   {[]File{{Path: "a", Size: 1, SHA256: sum, Chunks: 1}}, []ChunkRef{c, c}},
		"short sha":       {[]File{{Path: "a", Size: 1, SHA256: sum[:3], Chunks: 1}}, []ChunkRef{c}},
		"traversal":       {[]File{{Path: "../../.bashrc", Size: 1, SHA256: sum, Chunks: 1}}, []ChunkRef{c}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := NewManifest(SumCID(CodecDagCBOR, nil), tc.files, tc.chunks); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Non-canonical encodings are refused: a root with its keys in the
	// wrong order decodes in lax decoders but not here.
	good := Root{Format: 1, Chunker: 1}
	data, _ := encMode.Marshal(good)
	if _, err := DecodeRoot(data); err != nil {
		t.Fatalf("canonical root refused: %v", err)
	}
	lax, _ := cborMapInOrder([]string{"nchunks", "chunker", "nfiles", "format", "chunks", "files", "size"})
	if _, err := DecodeRoot(lax); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("non-canonical root: err = %v", err)
	}
	if _, err := DecodeRoot(append(data, 0)); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

// cborMapInOrder encodes a root-shaped map with zero values in the given key
// order (for the canonical-form test).
func cborMapInOrder(keys []string) ([]byte, error) {
	out := []byte{0xa0 | byte(len(keys))}
	for _, k := range keys {
		out = append(out, 0x60|byte(len(k)))
		out = append(out, k...)
		switch k {
		case "files", "chunks":
			out = append(out, 0x80)
		case "format", "chunker":
			out = append(out, 0x01)
		default:
			out = append(out, 0x00)
		}
	}
	return out, nil
}

func TestCheckPaths(t *testing.T) {
	bad := [][]string{
		{"../../.bashrc"}, {"/etc/passwd"}, {"a/../../b"}, {`a\b`}, {"a\x00b"}, {"a\x1b[2Jb"},
		{"a//b"}, {"a/"}, {""}, {"."}, {"a/./b"}, {"C:x"}, {"ok", "ok"}, {"Model.bin", "model.BIN"},
		{"a", "a/b"}, {"A", "a/b"}, {strings.Repeat("x", 256)}, {"bad\xffutf8"},
		{".shoal-fetch/done"}, {"model.bin.shoal-part"},
	}
	for _, ps := range bad {
		if err := CheckPaths(ps); !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckPaths(%q) = %v, want ErrBadPath", ps, err)
		}
	}
	good := []string{"config.json", "a/b/c.safetensors", "ünïcode/名前.bin", "a b", ".hidden", "..foo", "a/d", "a/c"}
	if err := CheckPaths(good); err != nil {
		t.Errorf("CheckPaths(good) = %v", err)
	}
}

func TestEscape(t *testing.T) {
	if got := Escape("evil\x1b[2Jname"); strings.ContainsRune(got, 0x1b) || !strings.Contains(got, `\x1b`) {
		t.Errorf("Escape = %q", got)
	}
	if got := Escape("plain/名前.bin"); got != "plain/名前.bin" {
		t.Errorf("Escape changed a clean name: %q", got)
	}
	if got := Escape("layer\u202esnib.0"); strings.ContainsRune(got, 0x202e) || !strings.Contains(got, `\u202e`) {
		t.Errorf("a bidi override is printed raw: %q", got)
	}
}

func TestCIDAllowlist(t *testing.T) {
	good := SumCID(CodecRaw, []byte("x"))
	if _, err := ParseCID(good.String()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"", "not-a-cid", "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB", // CIDv0
		"bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4", // blake3
		"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6a",  // truncated
	} {
		if _, err := ParseCID(s); err == nil {
			t.Errorf("ParseCID(%q) accepted", s)
		}
	}
}

func TestImportFolderAndIndex(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	names, err := testmodel.Folder(model, 3, 42)
	if err != nil {
		t.Fatal(err)
	}
	// A symlink to a regular file is imported as a file; a symlink to a
	// folder and a socket-like special file are skipped and reported.
	if err := os.Symlink(filepath.Join(model, "config.json"), filepath.Join(model, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(model, "tokenizer"), filepath.Join(model, "tokdir")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(model, "daemon.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	im := importPath(t, model)
	if len(im.Files) != len(names)+1 || len(im.Skipped) != 2 || im.Skipped[0].Path != "daemon.sock" || im.Skipped[1].Path != "tokdir" {
		t.Fatalf("files %d skipped %v", len(im.Files), im.Skipped)
	}
	again := importPath(t, model)
	if again.M.Root != im.M.Root {
		t.Fatal("import is not deterministic")
	}
	idx, err := OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if _, err := OpenIndex(filepath.Join(dir, "index.db")); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if err := idx.Put(im.Held("added")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxChunk)
	for i, f := range im.Files {
		want, _ := os.ReadFile(f.Path)
		var got []byte
		for _, c := range im.M.FileChunks(i) {
			data, err := idx.ReadChunk(c.CID.Cid, buf)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyBlock(c.CID.Cid, data); err != nil {
				t.Fatal(err)
			}
			got = append(got, data...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: chunks do not reassemble the file", f.Rel)
		}
	}
	// Edit a file after adding, keeping its size: it is not served.
	p := filepath.Join(model, "extra.bin")
	data, _ := os.ReadFile(p)
	data[0] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, f := range im.Files {
		if f.Rel == "extra.bin" {
			if _, err := idx.ReadChunk(im.M.FileChunks(i)[0].CID.Cid, buf); !errors.Is(err, ErrChanged) {
				t.Fatalf("changed file served: err = %v", err)
			}
		}
	}
	roots, _ := idx.Roots()
	if len(roots) != 1 || !roots[0].Root.Equals(im.M.Root) || roots[0].Files != len(im.Files) {
		t.Fatalf("roots = %+v", roots)
	}
}
