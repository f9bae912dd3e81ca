package content

import (
	"bytes"
	"io"
	"testing"

	"github.com/shoal-p2p/shoal/internal/testmodel"
)

func TestFileReaderReadsAndSeeks(t *testing.T) {
	data := testmodel.Bytes(9*MaxChunk+123, 3)
	calls := 0
	r := NewFileReader(int64(len(data)), func(off, n int64, w io.Writer) error {
		calls++
		_, err := w.Write(data[off : off+n])
		return err
	})
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read all: %v, equal %v", err, bytes.Equal(got, data))
	}
	if calls != 3 { // windows of 4 chunks
		t.Fatalf("%d reads of the source, want 3", calls)
	}
	for _, off := range []int64{0, 5, MaxChunk - 1, int64(len(data)) - 1} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 7)
		n, _ := io.ReadFull(r, b)
		if !bytes.Equal(b[:n], data[off:off+int64(n)]) {
			t.Fatalf("at %d: wrong bytes", off)
		}
	}
	if calls != 3+2 { // the seeks: 0, 5 and MaxChunk-1 in one window, the end in another
		t.Errorf("%d reads of the source after the seeks, want 5", calls)
	}
	if end, _ := r.Seek(0, io.SeekEnd); end != int64(len(data)) {
		t.Fatalf("end %d", end)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", n, err)
	}
}

func TestFileReaderShortSourceFails(t *testing.T) {
	r := NewFileReader(100, func(off, n int64, w io.Writer) error {
		_, err := w.Write(make([]byte, n-1))
		return err
	})
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("a source that sends too little must fail the read")
	}
}
