package fetch

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/protocol"
)

// fetch is one Get's state once the manifest is known.
type fetch struct {
	e      *Engine
	m      *content.Manifest
	blocks map[cid.Cid][]byte
	dir    string
	report func(Progress)
	// wholeFile: every file is hashed whole against the manifest before
	// its rename (Options.WholeFile).
	wholeFile bool
	// sel is the part of the model written (nil: all of it).
	sel selection

	root  *os.Root
	disc  *discovery
	lock  *dirLock // held by Get; taken in prepare if not yet
	state *fetchState
	files []*outFile
	jobs  []*job
	byCID map[cid.Cid]*job
	infos []content.FileInfo

	mu      sync.Mutex
	sched   *scheduler
	have    []byte          // bit per chunk reference: verified and written
	renamed map[string]bool // folders that received a file since the last flush

	fds      fdCache
	hashq    chan *outFile // files with chunks to hash (each at most once)
	unhashed atomic.Int64  // files not yet complete under their final names
	hashed   chan struct{} // closed when unhashed reaches 0

	done      atomic.Int64
	moved     atomic.Int64
	resumed   atomic.Int64
	refetch   atomic.Int64
	announced atomic.Bool
	bg        sync.WaitGroup // the partial root's announce
}

// outFile is a file being written: its temporary file and the sha256 of
// its written prefix, which grows as chunks land in order.
type outFile struct {
	idx      int
	rel, tmp string
	size     int64
	first    int     // index of its first chunk in the manifest's list
	chunkEnd []int64 // end offset of each chunk

	mu       sync.Mutex
	have     []bool
	done     bool // complete under its final name
	queued   bool // waiting for, or held by, a hash worker
	frontier int  // chunks [0, frontier) are hashed (or, unchecked, written)
	// check: the whole file is hashed against the manifest's sha256
	// before its rename, because the caller asked (Options.WholeFile).
	// Otherwise it need not be: every byte is in a chunk verified against
	// its CID (as it arrived, or on resume), and the root CID covers the
	// chunk list.
	check bool

	// Owned by the hash worker that holds the file (queued); nil unless
	// check.
	h hash.Hash

	// skip: left out of a partial fetch (done from the start, never
	// written).
	skip bool
	// rewrite, if set, makes the output from the temporary file, which
	// holds only the chunks chosen (a safetensors file cut down to some
	// tensors); see filePart.
	rewrite func(tmp io.ReaderAt, out io.Writer) error
}

// target is one place a chunk is written.
type target struct {
	file  *outFile
	chunk int // index within the file
	off   int64
}

func newFetch(e *Engine, m *content.Manifest, blocks []content.Block, dir string, report func(Progress)) *fetch {
	f := &fetch{e: e, m: m, dir: dir, report: report, blocks: map[cid.Cid][]byte{}, byCID: map[cid.Cid]*job{},
		have: make([]byte, (len(m.Chunks)+7)/8), renamed: map[string]bool{},
		hashed: make(chan struct{})}
	for _, b := range blocks {
		f.blocks[b.CID] = b.Data
	}
	return f
}

// prepare creates the folder, the state log and a temporary file for each
// file (through os.Root, so nothing lands outside dir), and takes stock of
// what an earlier run left: files complete under their final names, and
// chunks in the temporary files, trusted when logged and re-hashed when
// not (so a kill -9 loses only the chunks that were in flight).
func (f *fetch) prepare(ctx context.Context) error {
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return err
	}
	f.root = root
	if err := f.lock.take(f.dir, true); err != nil {
		return err
	}
	_, resuming := stateRoot(f.dir)
	state, loggedFiles, err := openState(f.dir, f.m.Root, f.e.logKey())
	if err != nil {
		return err
	}
	f.state = state
	made := map[string]bool{}
	for i, fl := range f.m.Files {
		rel := filepath.FromSlash(fl.Path)
		var part filePart
		if f.sel != nil {
			part = f.sel[i]
		}
		of := &outFile{idx: i, rel: rel, tmp: rel + content.PartialExt, size: int64(fl.Size), first: f.m.First[i],
			check: f.wholeFile && part.chunks == nil, skip: part.skip, done: part.skip, rewrite: part.rewrite}
		var end int64
		for _, c := range f.m.FileChunks(i) {
			end += int64(c.Len)
			of.chunkEnd = append(of.chunkEnd, end)
		}
		of.have = make([]bool, len(of.chunkEnd))
		f.files = append(f.files, of)
		if of.skip {
			continue
		}
		for k, want := range part.chunks {
			of.have[k] = !want // not fetched: as good as there for the file's progress
		}
		if d := path.Dir(fl.Path); d != "." && !made[d] {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return fmt.Errorf("%s: %w", content.Quote(fl.Path), err)
			}
			made[d] = true
		}
		// A cut-down file is made anew: what is under its name may be
		// the whole file, from an earlier fetch of all of it.
		if resuming && of.rewrite == nil && f.finalIsDone(of, loggedFiles) {
			_ = root.Remove(of.tmp) // a stale copy from an earlier run
			continue
		}
		// The temporary file is created when first written to (use):
		// a model of many files does not hold a handle for each.
	}
	f.buildJobs()
	if resuming {
		f.report(Progress{Phase: "resuming", Total: f.total(), Files: f.nfiles()})
		if err := f.scanPartial(ctx); err != nil {
			return err
		}
	}
	return nil
}

// finalIsDone reports whether an earlier run completed file of: logged
// as done with the size and mtime the file still has (and owned by this
// user), or else with the right sha256.
func (f *fetch) finalIsDone(of *outFile, logged map[int]fileMark) bool {
	st, err := f.root.Lstat(of.rel)
	if err != nil || !st.Mode().IsRegular() || st.Size() != of.size {
		return false
	}
	if mark, ok := logged[of.idx]; !ok || !mark.matches(st) {
		fh, err := f.root.Open(of.rel)
		if err != nil {
			return false
		}
		h := sha256.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil || string(h.Sum(nil)) != string(f.m.Files[of.idx].SHA256) {
			return false
		}
	}
	of.done = true
	of.frontier = len(of.have)
	for k := range of.have {
		of.have[k] = true
		f.setHave(of.first + k)
	}
	f.done.Add(of.size)
	return true
}

// scanPartial marks the chunks an earlier run left in temporary files,
// each only if it hashes to its CID: a chunk changed on disk since is
// fetched again.
func (f *fetch) scanPartial(ctx context.Context) error {
	buf := make([]byte, content.MaxChunk)
	for _, j := range f.jobs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var good []target
		for _, t := range j.targets {
			if t.file.done {
				continue
			}
			b := buf[:j.len]
			if err := f.readAt(t.file, b, t.off); err == nil && content.VerifyBlock(j.cid, b) == nil {
				good = append(good, t)
			}
		}
		if len(good) == 0 {
			continue
		}
		// A chunk present in one place is copied to the others.
		var data []byte
		if len(good) < len(j.targets) {
			b := buf[:j.len]
			if err := f.readAt(good[0].file, b, good[0].off); err != nil {
				continue
			}
			data = b
		}
		for k, t := range j.targets {
			if t.file.done {
				continue
			}
			if data != nil {
				if err := f.writeAt(t.file, data, t.off); err != nil {
					return err
				}
			}
			t.file.mu.Lock()
			t.file.have[t.chunk] = true
			t.file.mu.Unlock()
			f.setHave(j.idx[k])
			f.done.Add(int64(j.len))
		}
		j.done = true
		f.resumed.Add(1)
	}
	return nil
}

// buildJobs makes one job per distinct chunk, with every place it goes
// (chunks a partial fetch leaves out go nowhere).
func (f *fetch) buildJobs() {
	completed := map[*job]bool{}
	for i, of := range f.files {
		var off int64
		for k, c := range f.m.FileChunks(i) {
			j := f.byCID[c.CID.Cid]
			if j == nil {
				j = &job{cid: c.CID.Cid, len: int(c.Len)}
				f.byCID[c.CID.Cid] = j
				f.jobs = append(f.jobs, j)
			}
			switch {
			case of.done && !of.skip:
				completed[j] = true
			case !of.done && !of.have[k]:
				j.targets = append(j.targets, target{file: of, chunk: k, off: off})
				j.idx = append(j.idx, of.first+k)
			}
			off += int64(c.Len)
		}
	}
	// Chunks whose every place is in a file an earlier run completed, or
	// left out.
	for _, j := range f.jobs {
		if len(j.targets) == 0 {
			j.done = true
			if completed[j] {
				f.resumed.Add(1)
			}
		}
	}
}

// total is the bytes the fetch writes from chunks: the model's size, or
// what a partial fetch chose of it.
func (f *fetch) total() int64 {
	if f.sel == nil {
		return f.m.Size()
	}
	return f.sel.fetched(f.m)
}

// nfiles is how many files the fetch writes.
func (f *fetch) nfiles() int {
	n := 0
	for _, of := range f.files {
		if !of.skip {
			n++
		}
	}
	return n
}

func (f *fetch) setHave(i int) {
	f.mu.Lock()
	f.have[i/8] |= 1 << (i % 8)
	f.mu.Unlock()
}

// haveMap is the fetch's have-map, for peers that ask: what it holds and
// what it has asked for.
func (f *fetch) haveMap() protocol.HaveMap {
	f.mu.Lock()
	hm := protocol.HaveMap{Bits: append([]byte(nil), f.have...)}
	s := f.sched
	f.mu.Unlock()
	if s != nil {
		hm.Coming = s.coming(len(f.m.Chunks))
	}
	return hm
}

// readChunk serves a chunk this fetch has verified and written.
func (f *fetch) readChunk(c cid.Cid, buf []byte) ([]byte, bool) {
	j := f.byCID[c]
	if j == nil || len(buf) < j.len {
		return nil, false
	}
	for k, t := range j.targets {
		i := j.idx[k]
		f.mu.Lock()
		ok := f.have[i/8]&(1<<(i%8)) != 0
		f.mu.Unlock()
		if !ok {
			continue
		}
		if f.readAt(t.file, buf[:j.len], t.off) == nil {
			return buf[:j.len], true
		}
	}
	return nil, false
}
