// Package testmodel writes deterministic model folders for tests, the
// end-to-end script and the benchmarks: safetensors and GGUF files with real
// headers, a config.json and nested folders, filled with seeded pseudo-random
// bytes.
package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
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

// GGUFTensor is a tensor to write into a GGUF file: its name, its ggml type
// ("F32", "F16", "BF16", "Q4_0" or "Q8_0") and its shape, innermost
// dimension first (the first must be a multiple of the type's block size).
type GGUFTensor struct {
	Name  string
	Type  string
	Shape []uint64
}

// GGUFKV is a metadata key and value to write into a GGUF file. A value is
// a string, uint8, uint16, int32, uint32, uint64, float32, bool, []string
// or []int32.
type GGUFKV struct {
	Key   string
	Value any
}

// ggufTypes are the ggml types GGUF writes: number, elements per block,
// bytes per block.
var ggufTypes = map[string][3]uint64{
	"F32": {0, 1, 4}, "F16": {1, 1, 2}, "Q4_0": {2, 32, 18}, "Q8_0": {8, 32, 34}, "BF16": {30, 1, 2},
}

// GGUFTensorSize returns the bytes of a tensor of the given type and shape.
func GGUFTensorSize(typ string, shape []uint64) int64 {
	t, ok := ggufTypes[typ]
	if !ok {
		panic("testmodel: GGUF type " + typ)
	}
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	return int64(n / t[1] * t[2])
}

// GGUF returns the bytes of a valid GGUF version 3 file holding the given
// metadata and tensors: tensor infos in the order given, then the tensors'
// data in the same order, each at an offset aligned to general.alignment
// (a uint32 among kvs) or 32 and padded with zeros to that alignment, as
// llama.cpp writes them. Tensor i is filled with
// Bytes(size, seed+i), so two files with the same tensors and seed but
// different metadata hold the same tensor bytes.
func GGUF(kvs []GGUFKV, tensors []GGUFTensor, seed uint64) []byte {
	align := uint64(32)
	le := binary.LittleEndian
	var b []byte
	str := func(s string) {
		b = le.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, "GGUF"...)
	b = le.AppendUint32(b, 3)
	b = le.AppendUint64(b, uint64(len(tensors)))
	b = le.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		str(kv.Key)
		switch v := kv.Value.(type) {
		case uint8:
			b = append(le.AppendUint32(b, 0), v)
		case uint16:
			b = le.AppendUint16(le.AppendUint32(b, 2), v)
		case uint32:
			b = le.AppendUint32(le.AppendUint32(b, 4), v)
			if kv.Key == "general.alignment" {
				align = uint64(v)
			}
		case int32:
			b = le.AppendUint32(le.AppendUint32(b, 5), uint32(v))
		case float32:
			b = le.AppendUint32(le.AppendUint32(b, 6), math.Float32bits(v))
		case bool:
			b = le.AppendUint32(b, 7)
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case string:
			b = le.AppendUint32(b, 8)
			str(v)
		case uint64:
			b = le.AppendUint64(le.AppendUint32(b, 10), v)
		case []string:
			b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, 9), 8), uint64(len(v)))
			for _, s := range v {
				str(s)
			}
		case []int32:
			b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, 9), 5), uint64(len(v)))
			for _, x := range v {
				b = le.AppendUint32(b, uint32(x))
			}
		default:
			panic(fmt.Sprintf("testmodel: GGUF value %T", v))
		}
	}
	pad := func(n uint64) uint64 { return (n + align - 1) / align * align }
	var off uint64
	for _, t := range tensors {
		str(t.Name)
		b = le.AppendUint32(b, uint32(len(t.Shape)))
		for _, d := range t.Shape {
			b = le.AppendUint64(b, d)
		}
		b = le.AppendUint32(b, uint32(ggufTypes[t.Type][0]))
		b = le.AppendUint64(b, off)
		off = pad(off + uint64(GGUFTensorSize(t.Type, t.Shape)))
	}
	b = append(b, make([]byte, pad(uint64(len(b)))-uint64(len(b)))...)
	for i, t := range tensors {
		data := Bytes(GGUFTensorSize(t.Type, t.Shape), seed+uint64(i))
		b = append(b, data...)
		b = append(b, make([]byte, pad(uint64(len(data)))-uint64(len(data)))...)
	}
	return b
}
