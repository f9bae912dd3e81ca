// Package testmodel writes deterministic model folders for tests, the
// end-to-end script and the benchmarks: safetensors files with real headers,
// a config.json and nested folders, filled with seeded pseudo-random bytes.
package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// Tensor is a tensor to write: its name and size in bytes.
type Tensor struct {
	Name string
	Size int64
}

// Safetensors returns the bytes of a valid safetensors file holding the
// given tensors (dtype U8, one dimension), in order, filled from seed.
func Safetensors(tensors []Tensor, seed uint64) []byte {
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, t := range tensors {
		hdr[t.Name] = map[string]any{"dtype": "U8", "shape": []int64{t.Size}, "data_offsets": []int64{off, off + t.Size}}
		off += t.Size
	}
	js, _ := json.Marshal(hdr)
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := make([]byte, 8, 8+len(js)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(js)))
	out = append(out, js...)
	return append(out, Bytes(off, seed)...)
}

// Bytes returns n pseudo-random bytes from seed.
func Bytes(n int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Folder writes a model folder of about mib MiB under dir: a multi-tensor
// model.safetensors, config.json, a tokenizer in a nested folder and a
// small plain weights file. It returns the relative paths written.
func Folder(dir string, mib int64, seed uint64) ([]string, error) {
	var ts []Tensor
	left := mib << 20
	for i := 0; left > 0; i++ {
		// Tensor sizes vary: some below a chunk, some several chunks long.
		sz := min(left, int64((i%5)+1)*(700<<10)+int64(i)*4099)
		ts = append(ts, Tensor{Name: fmt.Sprintf("layers.%d.weight", i), Size: sz})
		left -= sz
	}
	files := map[string][]byte{
		"model.safetensors":           Safetensors(ts, seed),
		"config.json":                 []byte(`{"architectures":["ShoalTestModel"],"hidden_size":64}` + "\n"),
		"tokenizer/tokenizer.json":    Bytes(300<<10, seed+1),
		"tokenizer/special/vocab.txt": []byte("hello\nworld\n"),
		"extra.bin":                   append([]byte{0x80, 2}, Bytes(1<<20+12343, seed+2)...), // a pickle stream's head
	}
	var names []string
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
