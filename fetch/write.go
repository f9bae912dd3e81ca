package fetch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/fsx"
)

// write puts a verified chunk in every place it goes, logs it, and
// queues the files it advances for hashing.
func (f *fetch) write(j *job, data []byte) error {
	for _, t := range j.targets {
		if err := f.writeAt(t.file, data, t.off); err != nil {
			return err
		}
	}
	for k, t := range j.targets {
		f.setHave(j.idx[k])
		f.written(t.file, t.chunk)
	}
	f.done.Add(int64(j.len * len(j.targets)))
	return nil
}

// flush makes the progress log durable, after the folders of the files
// renamed into place (each file was synced before its rename).
func (f *fetch) flush() error {
	return f.state.flush(func() error {
		f.mu.Lock()
		dirs := f.renamed
		f.renamed = map[string]bool{}
		f.mu.Unlock()
		for d := range dirs {
			if err := fsx.SyncDir(filepath.Join(f.dir, d)); err != nil {
				return err
			}
			traceDurable("syncdir", d)
		}
		return nil
	})
}

// written records chunk k of of as written and queues the file for a hash
// worker, unless one has it already.
func (f *fetch) written(of *outFile, k int) {
	of.mu.Lock()
	of.have[k] = true
	queue := !of.queued
	of.queued = true
	of.mu.Unlock()
	if queue {
		f.hashq <- of // room for every file: never blocks
	}
}

// hashWorkers is how many files are hashed at once.
const hashWorkers = 8

// startHashing readies the hash queue: every file not yet complete is
// queued once, for what an earlier run left.
func (f *fetch) startHashing() {
	f.hashq = make(chan *outFile, len(f.files))
	for _, of := range f.files {
		if of.check {
			of.h = sha256.New()
		}
		if !of.done {
			f.unhashed.Add(1)
			of.queued = true
			f.hashq <- of
		}
	}
	if f.unhashed.Load() == 0 {
		close(f.hashed)
	}
}

// hashLoop is a hash worker: it follows each queued file's contiguous
// written prefix, reading it back from the page cache off the workers'
// path, and finishes the file once it is whole. One buffer serves every
// file it hashes.
func (f *fetch) hashLoop(ctx context.Context) error {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.hashed:
			return nil
		case of := <-f.hashq:
			if buf == nil {
				buf = make([]byte, content.MaxChunk)
			}
			if err := f.hashSome(of, buf); err != nil {
				return err
			}
		}
	}
}

// hashSome hashes what of has gained in order (if it is to be checked),
// and finishes it when it is whole (an empty file at once). It holds the file (of.queued) until no
// chunk is left to hash; a finished file stays held, so it is never
// queued again.
func (f *fetch) hashSome(of *outFile, buf []byte) error {
	for {
		of.mu.Lock()
		from, end := of.frontier, of.frontier
		for end < len(of.have) && of.have[end] {
			end++
		}
		if end == from && end < len(of.have) {
			of.queued = false // a writer queues it again
			of.mu.Unlock()
			return nil
		}
		of.mu.Unlock()
		for k := from; k < end && of.check; k++ {
			start := int64(0)
			if k > 0 {
				start = of.chunkEnd[k-1]
			}
			n := of.chunkEnd[k] - start
			if err := f.readAt(of, buf[:n], start); err != nil {
				return fmt.Errorf("reading back %s: %w", content.Quote(of.rel), err)
			}
			of.h.Write(buf[:n])
			if hashTrace != nil {
				hashTrace(of.rel, n)
			}
		}
		of.mu.Lock()
		of.frontier = end
		whole := end == len(of.have)
		of.mu.Unlock()
		if whole {
			if err := f.finish(of); err != nil {
				return err
			}
			if f.unhashed.Add(-1) == 0 {
				close(f.hashed)
			}
			return nil
		}
	}
}

// finish checks a whole file's sha256 (if it is to be checked), syncs it, renames it into place
// and logs it; its folder is synced before the log line is flushed. The
// file goes on being served from its final name until the fetch ends.
func (f *fetch) finish(of *outFile) error {
	if of.rewrite != nil {
		if err := f.rewriteFile(of); err != nil {
			return fmt.Errorf("writing %s: %w", content.Quote(of.rel), err)
		}
		return f.finished(of)
	}
	if of.check && string(of.h.Sum(nil)) != string(f.m.Files[of.idx].SHA256) {
		return fmt.Errorf("%w: %s: whole-file sha256 does not match the manifest", ErrIntegrity, content.Quote(of.rel))
	}
	if err := f.syncFile(of); err != nil {
		return err
	}
	traceDurable("sync", of.tmp)
	if err := f.rename(of); err != nil {
		return err
	}
	traceDurable("rename", of.rel)
	return f.finished(of)
}

// finished marks a file complete under its final name and logs it.
func (f *fetch) finished(of *outFile) error {
	st, err := f.root.Lstat(of.rel)
	if err != nil {
		return err
	}
	of.mu.Lock()
	of.done = true
	of.mu.Unlock()
	f.mu.Lock()
	f.renamed[filepath.Dir(of.rel)] = true
	f.mu.Unlock()
	f.state.addFile(of.idx, st)
	return nil
}

// rewriteFile makes a cut-down file's output from its temporary file
// (which holds the chunks chosen, each verified), under a temporary name
// of its own, synced, then renamed into place; the temporary file goes.
func (f *fetch) rewriteFile(of *outFile) error {
	tmp, err := f.use(of)
	if err != nil {
		return err
	}
	defer f.release(of)
	name := of.rel + ".subset" + content.PartialExt
	out, err := f.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, content.MaxChunk)
	err = of.rewrite(tmp, w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = f.root.Remove(name)
		return err
	}
	return f.replace(of, name)
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

// hashTrace, when set (by tests), is told of each read-back for a
// whole-file hash.
var hashTrace func(rel string, n int64)

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
func syncTree(dir string, m *content.Manifest, files []*outFile) error {
	seen := map[string]bool{}
	var dirs []string
	for i, fl := range m.Files {
		if files[i].skip {
			continue
		}
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
		if err := fsx.SyncDir(filepath.Join(dir, filepath.FromSlash(dirs[i]))); err != nil {
			return err
		}
	}
	return fsx.SyncDir(filepath.Dir(dir))
}
