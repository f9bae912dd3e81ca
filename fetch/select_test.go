package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/testmodel"
	"github.com/shoal-p2p/shoal/protocol"
)

// shardedModel writes a model of two safetensors shards of four layers
// each (two tensors a layer, one of 1.5 MiB), a config and a tokenizer.
func shardedModel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	weightMap := map[string]string{}
	var total int64
	for shard := range 2 {
		var ts []testmodel.Tensor
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", shard+1)
		for l := shard * 4; l < shard*4+4; l++ {
			ts = append(ts, testmodel.Tensor{Name: fmt.Sprintf("model.layers.%d.mlp.weight", l), Size: 3 << 19},
				testmodel.Tensor{Name: fmt.Sprintf("model.layers.%d.norm.weight", l), Size: 4096})
		}
		for _, x := range ts {
			weightMap[x.Name] = name
			total += x.Size
		}
		if err := os.WriteFile(filepath.Join(dir, name), testmodel.Safetensors(ts, uint64(shard+5)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"config.json": `{"n_layer":8}`, "tok/tokenizer.json": `{"v":1}`} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// seededWith is seeded for a given folder.
func seededWith(t *testing.T, model string) (*Engine, cid.Cid) {
	t.Helper()
	seedIdx := openIndex(t)
	im, err := content.Import(context.Background(), model, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := seedIdx.Put(im.Held("added")); err != nil {
		t.Fatal(err)
	}
	seeder := New(&fakeNet{self: "seeder"}, seedIdx, Config{RequestTimeout: 5 * time.Second, FindTimeout: 2 * time.Second}, nil)
	net := &fakeNet{self: "fetcher", peers: map[peer.ID]protocol.Store{"seeder": seeder}, strikes: map[peer.ID]int{}}
	return New(net, openIndex(t), Config{RequestTimeout: 5 * time.Second, FindTimeout: 2 * time.Second, LogKey: []byte("k")}, nil), im.M.Root
}

// readTensors parses a safetensors file and returns its tensors' bytes.
func readTensors(t *testing.T, p string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	ts, err := content.TensorsOf(b[8:8+n], int64(len(b))-8-int64(n))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	out := map[string][]byte{}
	for _, x := range ts {
		out[x.Name] = b[x.Off : x.Off+x.Size]
	}
	return out
}

// --tensors: only the chosen tensors' chunks move, the output is a valid
// safetensors file holding exactly them, byte for byte, and a shard
// holding none of them is not written.
func TestTensorsSubset(t *testing.T) {
	model := shardedModel(t)
	e, root := seededWith(t, model)
	out := filepath.Join(t.TempDir(), "out")
	res, err := e.Get(context.Background(), root, out, Options{Choice: Choice{Tensors: []string{"model.layers.[12].*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Partial {
		t.Error("result not marked partial")
	}
	got := readTensors(t, filepath.Join(out, "model-00001-of-00002.safetensors"))
	orig := readTensors(t, filepath.Join(model, "model-00001-of-00002.safetensors"))
	var names []string
	var want int64
	for name := range got {
		names = append(names, name)
		if !bytes.Equal(got[name], orig[name]) {
			t.Errorf("%s: bytes differ", name)
		}
		want += int64(len(orig[name]))
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[model.layers.1.mlp.weight model.layers.1.norm.weight model.layers.2.mlp.weight model.layers.2.norm.weight]" {
		t.Errorf("tensors %v", names)
	}
	if _, err := os.Stat(filepath.Join(out, "model-00002-of-00002.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("shard without a chosen tensor written: %v", err)
	}
	// The index names only the tensors written, and their size.
	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if b, err := os.ReadFile(filepath.Join(out, "model.safetensors.index.json")); err != nil || json.Unmarshal(b, &idx) != nil {
		t.Fatalf("index: %v", err)
	}
	if len(idx.WeightMap) != 4 || idx.Metadata.TotalSize != want || idx.WeightMap["model.layers.1.mlp.weight"] != "model-00001-of-00002.safetensors" {
		t.Errorf("index %+v (want %d bytes)", idx, want)
	}
	for _, small := range []string{"config.json", "tok/tokenizer.json"} {
		a, _ := os.ReadFile(filepath.Join(model, small))
		if b, err := os.ReadFile(filepath.Join(out, small)); err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %v", small, err)
		}
	}
	var moved int64
	for _, s := range res.Sources {
		moved += s.Bytes
	}
	// The chosen tensors, the other files, and the header read to choose.
	if limit := want + 64 + 2*content.MaxChunk; moved > limit {
		t.Errorf("moved %d bytes for %d bytes of tensors", moved, want)
	}
	if _, err := os.Stat(filepath.Join(out, content.StateDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("fetch state left behind")
	}
	ents, _ := os.ReadDir(out)
	for _, d := range ents {
		if filepath.Ext(d.Name()) == content.PartialExt {
			t.Errorf("left %s", d.Name())
		}
	}
}

// --include/--exclude write only the matching files; a pattern matching
// nothing is refused before anything is written.
func TestIncludeExclude(t *testing.T) {
	model := shardedModel(t)
	e, root := seededWith(t, model)
	out := filepath.Join(t.TempDir(), "out")
	res, err := e.Get(context.Background(), root, out, Options{Choice: Choice{Include: []string{"*.json"}, Exclude: []string{"tok/*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 {
		t.Errorf("%d files written, want 2", res.Files)
	}
	var got []string
	_ = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	if fmt.Sprint(got) != "[config.json model.safetensors.index.json]" {
		t.Errorf("wrote %v", got)
	}
	none := filepath.Join(t.TempDir(), "none")
	_, err = e.Get(context.Background(), root, none, Options{Choice: Choice{Include: []string{"*.gguf"}}})
	if !errors.Is(err, content.ErrNoMatch) {
		t.Fatalf("include matching nothing: %v", err)
	}
	if _, err := os.Stat(none); !errors.Is(err, os.ErrNotExist) {
		t.Error("a fetch of nothing created its folder")
	}
	if err := (Choice{Include: []string{"tok/**"}}).Check(); err == nil {
		t.Error("'**' accepted")
	}
	_, err = e.Get(context.Background(), root, none, Options{Choice: Choice{Tensors: []string{"nope.*"}}})
	if !errors.Is(err, content.ErrNoMatch) {
		t.Fatalf("tensors matching nothing: %v", err)
	}
}

// A fine-tune that changed two tensors of its base model moves only those
// (and the header) once the base is held: the rest is copied from the
// base's files, and the plan says how much is shared with which root.
func TestFineTuneMovesOnlyChangedTensors(t *testing.T) {
	var ts []testmodel.Tensor
	for l := range 6 {
		ts = append(ts, testmodel.Tensor{Name: fmt.Sprintf("layers.%d.weight", l), Size: 3 << 19})
	}
	base := testmodel.Safetensors(ts, 9)
	tuned := append([]byte(nil), base...)
	hdr := 8 + int64(binary.LittleEndian.Uint64(base))
	changed := int64(0)
	for _, l := range []int64{1, 4} { // flip a byte in two tensors
		tuned[hdr+l*(3<<19)+100] ^= 0xff // in the tensor's first chunk
		changed += content.MaxChunk
	}
	dirs := map[string][]byte{"base": base, "tuned": tuned}
	seedIdx := openIndex(t)
	roots := map[string]cid.Cid{}
	for name, data := range dirs {
		d := filepath.Join(t.TempDir(), name)
		_ = os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "model.safetensors"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		im, err := content.Import(context.Background(), d, content.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := seedIdx.Put(im.Held("added")); err != nil {
			t.Fatal(err)
		}
		roots[name] = im.M.Root
	}
	seeder := New(&fakeNet{self: "seeder"}, seedIdx, Config{RequestTimeout: 5 * time.Second, FindTimeout: 2 * time.Second}, nil)
	net := &fakeNet{self: "fetcher", peers: map[peer.ID]protocol.Store{"seeder": seeder}, strikes: map[peer.ID]int{}}
	e := New(net, openIndex(t), Config{RequestTimeout: 5 * time.Second, FindTimeout: 2 * time.Second, LogKey: []byte("k")}, nil)
	ctx := context.Background()
	if _, err := e.Get(ctx, roots["base"], filepath.Join(t.TempDir(), "base"), Options{}); err != nil {
		t.Fatal(err)
	}
	var plan Progress
	res, err := e.Get(ctx, roots["tuned"], filepath.Join(t.TempDir(), "tuned"), Options{Progress: func(p Progress) {
		if p.Phase == "plan" {
			plan = p
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	var fromPeers int64
	for _, s := range res.Sources {
		if s.Peer != "local" {
			fromPeers += s.Bytes
		}
	}
	t.Logf("fine-tune of %d bytes: %d moved from peers, %d copied from the base (%d bytes of tensors changed)", len(tuned), fromPeers, res.Local, changed)
	// End game may race one chunk in flight here at a peer on a slow
	// machine; nothing else of the base moves.
	if fromPeers < changed || fromPeers > changed+content.MaxChunk {
		t.Errorf("moved %d bytes from peers; %d changed (header %d)", fromPeers, changed, hdr)
	}
	if res.Local < int64(len(tuned))-changed-content.MaxChunk {
		t.Errorf("copied %d bytes locally", res.Local)
	}
	if len(plan.Shares) != 1 || !plan.Shares[0].Root.Equals(roots["base"]) || plan.Held != int64(len(tuned))-changed {
		t.Errorf("plan %+v (header %d)", plan, hdr)
	}
	view, err := e.Inspect(ctx, roots["tuned"])
	if err != nil || len(view.Files) != 1 || len(view.Files[0].Tensors) != 6 || view.Held != plan.Held {
		t.Fatalf("inspect: %+v %v", view, err)
	}
}

// --tensors on a GGUF file: the output is a valid GGUF file of exactly
// the chosen tensors, same metadata, tensor bytes as in the original.
func TestTensorsSubsetGGUF(t *testing.T) {
	var ts []testmodel.GGUFTensor
	for l := range 4 {
		ts = append(ts, testmodel.GGUFTensor{Name: fmt.Sprintf("blk.%d.attn.weight", l), Type: "F16", Shape: []uint64{512, 1024}},
			testmodel.GGUFTensor{Name: fmt.Sprintf("blk.%d.norm", l), Type: "F32", Shape: []uint64{100}})
	}
	data := testmodel.GGUF([]testmodel.GGUFKV{{Key: "general.architecture", Value: "llama"}, {Key: "general.name", Value: "tiny"}}, ts, 3)
	model := filepath.Join(t.TempDir(), "model")
	_ = os.MkdirAll(model, 0o755)
	if err := os.WriteFile(filepath.Join(model, "tiny.Q8.gguf"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	e, root := seededWith(t, model)
	out := filepath.Join(t.TempDir(), "out")
	res, err := e.Get(context.Background(), root, out, Options{Choice: Choice{Tensors: []string{"blk.2.*"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "tiny.Q8.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := content.ParseGGUF(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Fatalf("output is not valid GGUF: %v", err)
	}
	orig, _ := content.ParseGGUF(bytes.NewReader(data), int64(len(data)))
	if len(g.Tensors) != 2 || g.MetaString("general.name") != "tiny" || len(g.Meta) != len(orig.Meta) {
		t.Fatalf("tensors %+v meta %v", g.Tensors, g.Meta)
	}
	var want int64
	for _, gt := range g.Tensors {
		for _, ot := range orig.Tensors {
			if ot.Name == gt.Name {
				want += ot.Size
				if !bytes.Equal(got[gt.Off:gt.Off+gt.Size], data[ot.Off:ot.Off+ot.Size]) || fmt.Sprint(gt.Shape) != fmt.Sprint(ot.Shape) || gt.Type != ot.Type {
					t.Errorf("%s differs", gt.Name)
				}
			}
		}
		if !strings.HasPrefix(gt.Name, "blk.2.") {
			t.Errorf("kept %s", gt.Name)
		}
	}
	var moved int64
	for _, s := range res.Sources {
		moved += s.Bytes
	}
	if moved > want+2*content.MaxChunk {
		t.Errorf("moved %d bytes for %d bytes of tensors", moved, want)
	}
}
