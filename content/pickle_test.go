package content

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
)

// Pickles are found by their bytes, not their names: random bytes named
// extra.bin are not one, a pickle stream or a PyTorch zip under any name
// is, and a file that is not here is one by its name only.
func TestPickleFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) FileInfo {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return FileInfo{Rel: name, Path: p}
	}
	zp := filepath.Join(dir, "model.pt")
	zf, _ := os.Create(zp)
	zw := zip.NewWriter(zf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write([]byte{0x80, 2, '.'})
	zw.Close()
	zf.Close()
	files := []FileInfo{
		write("extra.bin", []byte{1, 2, 3, 4, 5}),
		write("weights.safetensors", []byte{0x80, 4, 0x95, 0}),
		{Rel: "model.pt", Path: zp},
		write("plain.zip", func() []byte { return []byte("PK\x03\x04 not really a zip") }()),
		{Rel: "gone.ckpt", Path: filepath.Join(dir, "gone.ckpt")},
		write("tiny", []byte{0x80}),
	}
	got := map[string]string{}
	for _, p := range PickleFiles(files) {
		got[p.Path] = p.Reason
	}
	want := map[string]string{"weights.safetensors": PickleStream, "model.pt": PickleZip, "gone.ckpt": PickleByName}
	if len(got) != len(want) {
		t.Fatalf("pickles = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}
