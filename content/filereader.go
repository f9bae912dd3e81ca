package content

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ReadRange writes bytes [off, off+n) of one file to w, each chunk verified
// before a byte of it is written. A node implements it over its index and
// its peers; FileReader turns it into an io.ReadSeeker (for
// http.ServeContent, which answers Range requests with it).
type ReadRange func(off, n int64, w io.Writer) error

// readWindow is how much a FileReader asks for at once: four chunks, so a
// client reading a few KiB at a time does not verify a chunk per read.
const readWindow = 4 * MaxChunk

// FileReader reads a file of known size through a ReadRange, a window at
// a time; a seek within the window reads no chunk again.
type FileReader struct {
	read  ReadRange
	size  int64
	pos   int64
	win   bytes.Buffer
	winAt int64 // offset of the window's first byte
}

// NewFileReader returns a reader of the size bytes read serves.
func NewFileReader(size int64, read ReadRange) *FileReader {
	return &FileReader{read: read, size: size}
}

// Read reads from the current offset.
func (r *FileReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	w := r.win.Bytes()
	if r.pos < r.winAt || r.pos >= r.winAt+int64(len(w)) {
		r.win.Reset()
		n := min(readWindow, r.size-r.pos)
		if err := r.read(r.pos, n, &r.win); err != nil {
			r.win.Reset()
			return 0, err
		}
		if int64(r.win.Len()) != n {
			got := r.win.Len()
			r.win.Reset()
			return 0, fmt.Errorf("read %d bytes at %d, wanted %d: %w", got, r.pos, n, io.ErrUnexpectedEOF)
		}
		r.winAt, w = r.pos, r.win.Bytes()
	}
	n := copy(p, w[r.pos-r.winAt:])
	r.pos += int64(n)
	return n, nil
}

// Seek sets the offset for the next Read.
func (r *FileReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if off < 0 {
		return 0, errors.New("seek: negative offset")
	}
	r.pos = off
	return off, nil
}
