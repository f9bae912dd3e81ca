package content

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
)

// FileView describes one file of a model for inspect: what it is and, for
// a weights file, its tensors, read from its header alone.
type FileView struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // hex: the Hub's LFS oid
	// Format is "safetensors", "gguf", "pickle" (never loaded by Shoal)
	// or "" for anything else.
	Format  string       `json:"format,omitempty"`
	Tensors []TensorInfo `json:"tensors,omitempty"`
	// Problem says why a weights file's header could not be read (it is
	// then chunked as a plain file).
	Problem string `json:"problem,omitempty"`
}

// Describe reads what inspect shows of a file from its header: r reads
// the file (of size bytes) and is asked only for header bytes.
func Describe(rel string, sha []byte, r io.ReaderAt, size int64) FileView {
	v := FileView{Path: rel, Size: size}
	if sha != nil {
		v.SHA256 = hex.EncodeToString(sha)
	}
	var err error
	switch {
	case IsSafetensorsName(rel):
		v.Format = "safetensors"
		v.Tensors, err = safetensorsTensors(r, size)
	case IsGGUFName(rel):
		v.Format = "gguf"
		var g *GGUF
		if g, err = ParseGGUF(r, size); err == nil {
			for _, t := range g.Tensors {
				v.Tensors = append(v.Tensors, TensorInfo{Name: t.Name, DType: t.Type, Shape: t.Shape, Off: t.Off, Size: t.Size})
			}
		}
	case IsPickleName(rel):
		v.Format = "pickle"
	}
	if err != nil {
		v.Problem = err.Error()
	}
	return v
}

// safetensorsTensors reads a safetensors file's header and lists its
// tensors.
func safetensorsTensors(r io.ReaderAt, size int64) ([]TensorInfo, error) {
	hdr, err := SafetensorsHeader(r, size)
	if err != nil {
		return nil, err
	}
	return TensorsOf(hdr, size-8-int64(len(hdr)))
}

// SafetensorsHeader reads the JSON header of a safetensors file of size
// bytes (its length checked against the file and the format's cap).
func SafetensorsHeader(r io.ReaderAt, size int64) ([]byte, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%w: file shorter than 8 bytes", ErrBadSafetensors)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxSafetensorsHeader || int64(n) > size-8 {
		return nil, fmt.Errorf("%w: header length %d out of range", ErrBadSafetensors, n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSafetensors, err)
	}
	return hdr, nil
}

// ModelView is what inspect shows of a model: its files, the tensors of
// its weights files, and how much of it this node already holds under
// other roots.
type ModelView struct {
	Root  cid.Cid    `json:"root"`
	Size  int64      `json:"size"`
	Files []FileView `json:"files"`
	// Distinct is the bytes of the model's distinct chunks; Held those
	// this node holds under other roots (Shares says which).
	Distinct int64   `json:"distinct"`
	Held     int64   `json:"held"`
	Shares   []Share `json:"shares,omitempty"`
	// Local: this node holds the root itself.
	Local bool `json:"local"`
}

// DescribePath describes a file or folder on disk for inspect, from the
// headers of its weights files alone (no whole-file hash: SHA256 is left
// empty). A folder is walked as Import walks it, except that symlinks out
// of it are followed (a Hugging Face snapshot links into blobs/): inspect
// only reads, and serves nothing. What it passed over is returned too.
func DescribePath(p string) ([]FileView, []Skipped, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, nil, err
	}
	srcs := []source{{rel: filepath.Base(abs), abs: abs, st: st}}
	var skipped []Skipped
	if st.IsDir() {
		if srcs, skipped, err = walk(abs, ImportOptions{FollowExternalLinks: true}); err != nil {
			return nil, nil, err
		}
	} else if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file or folder", Escape(p))
	}
	views := make([]FileView, 0, len(srcs))
	for _, s := range srcs {
		f, err := os.Open(s.abs)
		if err != nil {
			return nil, nil, err
		}
		v := Describe(s.rel, nil, f, s.st.Size())
		f.Close()
		if v.Format == "" || v.Format == "pickle" {
			// On disk a pickle is told by its bytes, whatever its name.
			if reason, ok := SniffPickle(s.abs); ok {
				v.Format = ""
				if reason != "" {
					v.Format = "pickle"
				}
			}
		}
		views = append(views, v)
	}
	return views, skipped, nil
}
