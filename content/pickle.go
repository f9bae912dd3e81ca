package content

import (
	"archive/zip"
	"io"
	"os"
	"strings"
)

// Pickle is a file that may run code when loaded (Python's pickle: what
// torch.load and pickle.load execute), and why it is thought to be one.
type Pickle struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Pickle reasons.
const (
	PickleStream = "a pickle stream (starts with the PROTO opcode)"
	PickleZip    = "a PyTorch zip archive holding data.pkl"
	PickleByName = "may contain a pickle (by its name; its bytes are not here to check)"
)

// SniffPickle reads what it needs of a file to tell whether it holds a
// pickle: a pickle stream starts with opcode 0x80 (PROTO) and a protocol
// byte; a PyTorch checkpoint is a zip archive with a data.pkl in it. It
// returns the reason, "" for neither, and ok false when the file cannot
// be read.
func SniffPickle(path string) (reason string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var head [4]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && n < 2 {
		return "", err == io.EOF || err == io.ErrUnexpectedEOF
	}
	if head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 {
		return PickleStream, true
	}
	if string(head[:2]) == "PK" {
		st, err := f.Stat()
		if err != nil {
			return "", false
		}
		if z, err := zip.NewReader(f, st.Size()); err == nil {
			for _, e := range z.File {
				if e.Name == "data.pkl" || strings.HasSuffix(e.Name, "/data.pkl") {
					return PickleZip, true
				}
			}
		}
	}
	return "", true
}

// PickleFiles lists the pickles among files (Rel names them, Path is
// where each lies): by content where a file can be read, by name where it
// cannot.
func PickleFiles(files []FileInfo) []Pickle {
	var out []Pickle
	for _, f := range files {
		reason, ok := SniffPickle(f.Path)
		if !ok && IsPickleName(f.Rel) {
			reason = PickleByName
		}
		if reason != "" {
			out = append(out, Pickle{Path: f.Rel, Reason: reason})
		}
	}
	return out
}
