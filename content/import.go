package content

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Skipped is something an import left out, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Imported is the result of importing a file or a folder.
type Imported struct {
	Name    string // base name of what was imported
	Dir     string // absolute folder the files are under
	M       *Manifest
	Blocks  []Block
	Files   []FileInfo
	Skipped []Skipped
	// Warnings are files imported with a caveat (invalid safetensors
	// header chunked as a plain file).
	Warnings []Skipped
}

// Held returns what to record in the index for this import.
func (im *Imported) Held(source string) *Held {
	return &Held{
		Info: RootInfo{Name: im.Name, Dir: im.Dir, Size: im.M.Size(), Files: len(im.Files),
			Source: source, Time: time.Now().UTC()},
		Blocks: im.Blocks, Files: im.Files, M: im.M,
	}
}

type source struct {
	rel, abs string
	st       os.FileInfo
}

// ImportOptions tune an import. The zero value is the safe default.
type ImportOptions struct {
	// Progress, if not nil, is called with each run of bytes hashed.
	Progress func(n int64)
	// FollowExternalLinks adds the files that symlinks in the folder point
	// at outside it (or inside a folder that is not added, such as .git).
	// By default such links are skipped and listed: a cloned repository
	// can plant tokenizer.json -> /etc/shadow.
	FollowExternalLinks bool
	// LinksWithin, if set, is a folder outside the one added that its
	// symlinks may point into, and no other: a Hugging Face cache repo,
	// whose snapshots/REV/ links into its blobs/.
	LinksWithin string
	// Name, if set, is recorded instead of the base name of what is
	// imported.
	Name string
}

// Import hashes a file or a folder in place and builds its manifest. Files
// are read once: the whole-file sha256 and the chunk hashes are computed
// side by side from the same buffers, and files are hashed in parallel.
// Symlinks to regular files inside the folder are followed and recorded as
// regular files (read from where they point); links out of the folder are
// skipped unless opt.FollowExternalLinks; everything else that is not a
// regular file or a folder is skipped and listed.
func Import(ctx context.Context, path string, opt ImportOptions) (*Imported, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	im := &Imported{Name: filepath.Base(abs)}
	if opt.Name != "" {
		im.Name = opt.Name
	}
	var srcs []source
	if st.Mode().IsRegular() {
		im.Dir = filepath.Dir(abs)
		srcs = []source{{rel: filepath.Base(abs), abs: abs, st: st}}
	} else if st.IsDir() {
		im.Dir = abs
		srcs, im.Skipped, err = walk(abs, opt)
		if err != nil {
			return nil, err
		}
		if len(srcs) == 0 {
			return nil, fmt.Errorf("%s: %w (%d skipped)", Escape(path), ErrNothingToAdd, len(im.Skipped))
		}
	} else {
		return nil, fmt.Errorf("%s: not a regular file or folder", Escape(path))
	}
	paths := make([]string, len(srcs))
	for i, s := range srcs {
		paths[i] = s.rel
	}
	if err := CheckPaths(paths); err != nil {
		return nil, fmt.Errorf("cannot import: %w", err)
	}

	hashed := make([]*hashedFile, len(srcs))
	errs := make([]error, len(srcs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, s := range srcs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if ctx.Err() != nil {
				errs[i] = ctx.Err()
				return
			}
			hashed[i], errs[i] = importFile(s, opt.Progress)
		}()
	}
	wg.Wait()
	var all []ChunkRef
	files := make([]File, len(srcs))
	infos := make([]FileInfo, len(srcs))
	for i := range srcs {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", Escape(srcs[i].rel), errs[i])
		}
		h := hashed[i]
		if h.warning != nil {
			im.Warnings = append(im.Warnings, Skipped{Path: srcs[i].rel, Reason: h.warning.Error()})
		}
		files[i], infos[i] = h.file, h.info
		all = append(all, h.refs...)
	}
	m := &Manifest{Files: files, Chunks: all}
	if im.Blocks, err = m.Encode(); err != nil {
		return nil, err
	}
	if im.M, err = NewManifest(m.Root, files, all); err != nil {
		return nil, err
	}
	im.Files = infos
	return im, nil
}

// ImportSize is the number of bytes an import of path with opt will hash
// (by the same rules as Import), for a progress bar's total; 0 if it
// cannot tell.
func ImportSize(path string, opt ImportOptions) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st.Mode().IsRegular() {
		return st.Size()
	}
	srcs, _, _ := walk(path, opt)
	var n int64
	for _, s := range srcs {
		n += s.st.Size()
	}
	return n
}

// walk lists the regular files under dir (following symlinks to regular
// files, and only to those inside dir, or inside opt.LinksWithin, unless
// opt.FollowExternalLinks), sorted by relative path, and what it skipped.
func walk(dir string, opt ImportOptions) ([]source, []Skipped, error) {
	top, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, err
	}
	within := ""
	if opt.LinksWithin != "" {
		if within, err = filepath.EvalSymlinks(opt.LinksWithin); err != nil {
			return nil, nil, err
		}
	}
	var srcs []source
	var skipped []Skipped
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				skipped = append(skipped, Skipped{rel, "version-control folder"})
				return filepath.SkipDir
			}
			if rel == StateDirName {
				skipped = append(skipped, Skipped{rel, "state of an unfinished shoal download"})
				return filepath.SkipDir
			}
			return nil
		}
		abs := p
		if d.Type()&fs.ModeSymlink != 0 {
			// Resolved whole, chains and links through folders included;
			// a loop ends in an error, not a hang.
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				skipped = append(skipped, Skipped{rel, "broken symlink or unreadable: " + err.Error()})
				return nil
			}
			where := outside(top, target)
			if where != "" && within != "" && outside(within, target) == "" {
				where = ""
			}
			if where != "" && !opt.FollowExternalLinks {
				skipped = append(skipped, Skipped{rel, "symlink to " + Escape(target) + ", " + where + " (--follow-external-links adds it)"})
				return nil
			}
			abs = target
		}
		st, err := os.Stat(abs)
		switch {
		case err != nil:
			skipped = append(skipped, Skipped{rel, "broken symlink or unreadable: " + err.Error()})
		case st.IsDir():
			skipped = append(skipped, Skipped{rel, "symlink to a folder"})
		case !st.Mode().IsRegular():
			skipped = append(skipped, Skipped{rel, "not a regular file (" + st.Mode().Type().String() + ")"})
		case filepath.Ext(p) == PartialExt:
			skipped = append(skipped, Skipped{rel, "unfinished shoal download"})
		default:
			srcs = append(srcs, source{rel: rel, abs: abs, st: st})
		}
		return nil
	})
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].rel < srcs[j].rel })
	return srcs, skipped, err
}

// outside says why target (a resolved path) is not part of what an import
// of the folder top (resolved too) adds: "outside the folder", "inside a
// folder that is not added", or "" when it is part of it.
func outside(top, target string) string {
	rel, err := filepath.Rel(top, target)
	if err != nil || !filepath.IsLocal(rel) {
		return "outside the folder"
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if parts[0] == StateDirName || slices.Contains(parts, ".git") {
		return "inside a folder that is not added"
	}
	return ""
}

// PartialExt marks a file being downloaded; it is renamed away when the
// file is complete and verified.
const PartialExt = ".shoal-part"

// hashDepth is how many chunk buffers one file has in flight.
const hashDepth = 4

type slot struct {
	buf  []byte
	n    int
	idx  int
	refs atomic.Int32
}

var slotPool = sync.Pool{New: func() any { return &slot{buf: make([]byte, MaxChunk)} }}

// hashedFile is one file imported: its manifest entry, chunks and index
// record, and a warning to report (nil if none).
type hashedFile struct {
	file    File
	refs    []ChunkRef
	info    FileInfo
	warning error
}

// importFile hashes one file: the calling goroutine reads, one goroutine
// keeps the whole-file sha256, another hashes each chunk.
func importFile(s source, progress func(int64)) (*hashedFile, error) {
	f, err := os.Open(s.abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	plan := Plan(s.rel, f, st.Size())
	spans := plan.Spans

	free := make(chan *slot, hashDepth)
	for range hashDepth {
		free <- slotPool.Get().(*slot)
	}
	release := func(sl *slot) {
		if sl.refs.Add(-1) == 0 {
			free <- sl
		}
	}
	wholeCh := make(chan *slot, hashDepth)
	chunkCh := make(chan *slot, hashDepth)
	refs := make([]ChunkRef, len(spans))
	whole := sha256.New()
	var wg sync.WaitGroup
	wg.Go(func() {
		for sl := range wholeCh {
			whole.Write(sl.buf[:sl.n])
			release(sl)
		}
	})
	wg.Go(func() {
		for sl := range chunkCh {
			refs[sl.idx] = ChunkRef{CID: Link{SumCID(CodecRaw, sl.buf[:sl.n])}, Len: uint64(sl.n)}
			if progress != nil {
				progress(int64(sl.n))
			}
			release(sl)
		}
	})
	var rerr error
	for i, sp := range spans {
		sl := <-free
		sl.n, sl.idx = int(sp.Len), i
		if _, rerr = io.ReadFull(f, sl.buf[:sl.n]); rerr != nil {
			free <- sl
			break
		}
		sl.refs.Store(2)
		wholeCh <- sl
		chunkCh <- sl
	}
	close(wholeCh)
	close(chunkCh)
	wg.Wait()
	for range hashDepth {
		slotPool.Put(<-free)
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w: %w", ErrChangedWhileReading, rerr)
	}
	// The file must end where it did and look as it did when we started.
	var one [1]byte
	if n, _ := f.Read(one[:]); n != 0 {
		return nil, ErrChangedWhileReading
	}
	if after, err := os.Stat(s.abs); err != nil || after.Size() != st.Size() || !after.ModTime().Equal(st.ModTime()) {
		return nil, ErrChangedWhileReading
	}
	sum := whole.Sum(nil)
	return &hashedFile{
		file:    File{Path: s.rel, Size: uint64(st.Size()), SHA256: sum, Chunks: uint64(len(refs))},
		refs:    refs,
		info:    FileInfo{Rel: s.rel, Path: s.abs, Size: st.Size(), MtimeNs: st.ModTime().UnixNano(), SHA256: sum},
		warning: plan.Fallback,
	}, nil
}
