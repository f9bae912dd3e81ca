package fetch

import (
	"container/list"
	"fmt"
	"os"
	"sync"

	"github.com/shoal-p2p/shoal/content"
)

// maxOpenFiles bounds the files a fetch keeps open while idle: a model of
// 10,000 files is written with a few dozen handles, under `ulimit -n 1024`.
// Files in use at the moment are never closed, so the bound can be passed
// by the handful of files the workers are writing at once.
const maxOpenFiles = 64

// fdCache keeps a fetch's file handles: opened on first use, kept while
// used, closed least recently used first once too many are idle. It owns
// each file's handle state.
type fdCache struct {
	mu    sync.Mutex
	open  int
	idle  list.List // *outFile with a handle and no users, least recent first
	state map[*outFile]*fdState
}

// fdState is a file's handle, and where the file is on disk.
type fdState struct {
	fh    *os.File      // open handle, or nil
	users int           // operations using fh now
	elem  *list.Element // in the idle list while users == 0
	final bool          // renamed to rel
	gone  bool          // replaced by a rewritten file: not to be opened again
	sized bool          // the temporary file exists at its full size
}

// of returns of's handle state. Called with c.mu held.
func (c *fdCache) of(of *outFile) *fdState {
	st := c.state[of]
	if st == nil {
		if c.state == nil {
			c.state = map[*outFile]*fdState{}
		}
		st = &fdState{}
		c.state[of] = st
	}
	return st
}

// use returns an open handle of of (its temporary file, or its final name
// once renamed), held until release.
func (f *fetch) use(of *outFile) (*os.File, error) {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.of(of)
	if st.fh != nil {
		if st.elem != nil {
			c.idle.Remove(st.elem)
			st.elem = nil
		}
		st.users++
		return st.fh, nil
	}
	for c.open >= maxOpenFiles && c.idle.Len() > 0 {
		old := c.state[c.idle.Remove(c.idle.Front()).(*outFile)]
		old.elem = nil
		old.fh.Close() // written data stays in the page cache; flush syncs by name
		old.fh = nil
		c.open--
	}
	if st.gone {
		return nil, fmt.Errorf("%s: %w", content.Quote(of.rel), os.ErrNotExist)
	}
	name, flags := of.tmp, os.O_RDWR|os.O_CREATE
	if st.final {
		name, flags = of.rel, os.O_RDWR
	}
	fh, err := f.root.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", content.Quote(of.rel), err)
	}
	if !st.final && !st.sized {
		// Created (or found from an earlier run): at its full size, so
		// chunks land anywhere in it.
		if err := fh.Truncate(of.size); err != nil {
			fh.Close()
			return nil, fmt.Errorf("%s: %w", content.Quote(of.rel), err)
		}
		st.sized = true
	}
	st.fh, st.users = fh, 1
	c.open++
	return fh, nil
}

// release ends a use of of's handle.
func (f *fetch) release(of *outFile) {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state[of]
	st.users--
	if st.users == 0 && st.fh != nil {
		st.elem = c.idle.PushBack(of)
	}
}

// readAt reads len(b) bytes of of at off.
func (f *fetch) readAt(of *outFile, b []byte, off int64) error {
	fh, err := f.use(of)
	if err != nil {
		return err
	}
	defer f.release(of)
	_, err = fh.ReadAt(b, off)
	return err
}

// writeAt writes b into of at off.
func (f *fetch) writeAt(of *outFile, b []byte, off int64) error {
	fh, err := f.use(of)
	if err != nil {
		return err
	}
	defer f.release(of)
	if _, err := fh.WriteAt(b, off); err != nil {
		return fmt.Errorf("writing %s: %w", content.Quote(of.rel), err)
	}
	return nil
}

// syncFile makes of's written data durable (through any handle: fsync
// covers the file, not the descriptor).
func (f *fetch) syncFile(of *outFile) error {
	fh, err := f.use(of)
	if err != nil {
		return err
	}
	defer f.release(of)
	return fh.Sync()
}

// rename moves of to its final name. The cache's lock is held across the
// rename and the flag: a handle opened in between (to serve a chunk to
// another fetcher) would otherwise create an empty temporary file again.
// A handle already open stays valid: it is the same file.
func (f *fetch) rename(of *outFile) error {
	f.fds.mu.Lock()
	defer f.fds.mu.Unlock()
	if err := f.root.Rename(of.tmp, of.rel); err != nil {
		return err
	}
	f.fds.of(of).final = true
	return nil
}

// replace renames name over of's final name and removes of's temporary
// file, under the cache's lock (as rename); a handle still open reads the
// temporary file it had, and none is opened again.
func (f *fetch) replace(of *outFile, name string) error {
	f.fds.mu.Lock()
	defer f.fds.mu.Unlock()
	if err := f.root.Rename(name, of.rel); err != nil {
		return err
	}
	f.fds.of(of).gone = true
	return f.root.Remove(of.tmp)
}

// closeFiles closes every handle of the fetch.
func (f *fetch) closeFiles() {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.state {
		if st.fh != nil {
			st.fh.Close()
			st.fh, st.elem = nil, nil
		}
	}
	c.idle.Init()
	c.open = 0
}
