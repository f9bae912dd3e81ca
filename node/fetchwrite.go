package node

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/shoal-p2p/shoal/content"
)

// write puts a verified chunk in every place it goes, logs it, and
// finishes the files it completes.
func (f *fetch) write(j *job, data []byte) error {
	for _, t := range j.targets {
		if _, err := t.file.f.WriteAt(data, t.off); err != nil {
			return fmt.Errorf("writing %s: %w", content.Quote(t.file.rel), err)
		}
	}
	for k, t := range j.targets {
		f.setHave(j.idx[k])
		f.mu.Lock()
		f.dirty[t.file] = true
		f.mu.Unlock()
		f.state.add('c', j.idx[k])
		t.file.written(t.chunk)
	}
	f.done.Add(int64(j.len * len(j.targets)))
	return nil
}

// flush makes the progress log durable: first the data it names.
func (f *fetch) flush() error {
	return f.state.flush(func() error {
		f.mu.Lock()
		dirty := f.dirty
		f.dirty = map[*outFile]bool{}
		f.mu.Unlock()
		for of := range dirty {
			// Sync outside the file's lock: writers and the hasher go on
			// meanwhile. The file stays open until the fetch ends.
			of.mu.Lock()
			fh, done := of.f, of.done
			of.mu.Unlock()
			if fh != nil && !done {
				if err := fh.Sync(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// written records chunk k as written and wakes the file's hasher.
func (of *outFile) written(k int) {
	of.mu.Lock()
	of.have[k] = true
	of.mu.Unlock()
	select {
	case of.wake <- struct{}{}:
	default:
	}
}

// hash follows a file's contiguous written prefix, reading it back from
// the page cache off the workers' path, and finishes the file once it is
// whole. It owns of.frontier, of.h and of.buf.
func (f *fetch) hash(ctx context.Context, of *outFile) error {
	for {
		of.mu.Lock()
		end := of.frontier
		for end < len(of.have) && of.have[end] {
			end++
		}
		done := of.done
		of.mu.Unlock()
		if done {
			return nil
		}
		for ; of.frontier < end; of.frontier++ {
			start := int64(0)
			if of.frontier > 0 {
				start = of.chunkEnd[of.frontier-1]
			}
			n := of.chunkEnd[of.frontier] - start
			if of.buf == nil {
				of.buf = make([]byte, content.MaxChunk)
			}
			if _, err := of.f.ReadAt(of.buf[:n], start); err != nil {
				return fmt.Errorf("reading back %s: %w", content.Quote(of.rel), err)
			}
			of.h.Write(of.buf[:n])
		}
		if of.frontier == len(of.have) {
			of.buf = nil
			return f.finish(of)
		}
		select {
		case <-of.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// finish checks a whole file's sha256, syncs it, renames it into place,
// syncs its folder and logs it. The file stays open for serving until the
// fetch ends.
func (f *fetch) finish(of *outFile) error {
	of.mu.Lock()
	defer of.mu.Unlock()
	if of.done {
		return nil
	}
	if sum := of.h.Sum(nil); string(sum) != string(f.m.Files[of.idx].SHA256) {
		return fmt.Errorf("%w: %s: whole-file sha256 does not match the manifest", ErrIntegrity, content.Quote(of.rel))
	}
	if err := of.f.Sync(); err != nil {
		return err
	}
	traceDurable("sync", of.tmp)
	if err := f.root.Rename(of.tmp, of.rel); err != nil {
		return err
	}
	traceDurable("rename", of.rel)
	if err := syncDir(filepath.Join(f.dir, filepath.Dir(of.rel))); err != nil {
		return err
	}
	traceDurable("syncdir", filepath.Dir(of.rel))
	st, err := f.root.Lstat(of.rel)
	if err != nil {
		return err
	}
	of.done = true
	f.state.addFile(of.idx, st)
	return nil
}

// closeFiles closes every file of the fetch.
func (f *fetch) closeFiles() {
	for _, of := range f.files {
		of.mu.Lock()
		if of.f != nil {
			of.f.Close()
			of.f = nil
		}
		of.mu.Unlock()
	}
}

// close ends a fetch that did not complete: files are closed, temporary
// files and the progress log stay for a later run.
func (f *fetch) close() {
	f.closeFiles()
	if f.state != nil {
		f.state.close()
	}
	if f.root != nil {
		f.root.Close()
	}
}

// complete ends a fetch that completed: files are closed and the progress
// log removed.
func (f *fetch) complete() error {
	f.closeFiles()
	f.root.Close()
	return f.state.remove()
}

// durableTrace, when set (by tests), is told of each step that makes a
// fetched file durable, in order.
var durableTrace func(op, path string)

func traceDurable(op, path string) {
	if durableTrace != nil {
		durableTrace(op, path)
	}
}

// syncTree fsyncs every folder that received a file or a new folder, and
// the parent of dir, so the renames are durable before success is reported.
func syncTree(dir string, m *content.Manifest) error {
	seen := map[string]bool{}
	var dirs []string
	for _, fl := range m.Files {
		for d := path.Dir(fl.Path); ; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
			if d == "." {
				break
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Join(dir, filepath.FromSlash(dirs[i]))); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(dir))
}
