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
// used, closed least recently used first once too many are idle.
type fdCache struct {
	mu   sync.Mutex
	open int
	idle list.List // *outFile with a handle and no users, least recent first
}

// use returns an open handle of of (its temporary file, or its final name
// once renamed), held until release.
func (f *fetch) use(of *outFile) (*os.File, error) {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	if of.fh != nil {
		if of.elem != nil {
			c.idle.Remove(of.elem)
			of.elem = nil
		}
		of.users++
		return of.fh, nil
	}
	for c.open >= maxOpenFiles && c.idle.Len() > 0 {
		old := c.idle.Remove(c.idle.Front()).(*outFile)
		old.elem = nil
		old.fh.Close() // written data stays in the page cache; flush syncs by name
		old.fh = nil
		c.open--
	}
	name, flags := of.tmp, os.O_RDWR|os.O_CREATE
	if of.final {
		name, flags = of.rel, os.O_RDWR
	}
	fh, err := f.root.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", content.Quote(of.rel), err)
	}
	if !of.final && !of.sized {
		// Created (or found from an earlier run): at its full size, so
		// chunks land anywhere in it.
		if err := fh.Truncate(of.size); err != nil {
			fh.Close()
			return nil, fmt.Errorf("%s: %w", content.Quote(of.rel), err)
		}
		of.sized = true
	}
	of.fh, of.users = fh, 1
	c.open++
	return fh, nil
}

// release ends a use of of's handle.
func (f *fetch) release(of *outFile) {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	of.users--
	if of.users == 0 && of.fh != nil {
		of.elem = c.idle.PushBack(of)
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

// renamed marks of as living under its final name now.
func (f *fetch) renamedTo(of *outFile) {
	f.fds.mu.Lock()
	of.final = true
	f.fds.mu.Unlock()
}

// closeFiles closes every handle of the fetch.
func (f *fetch) closeFiles() {
	c := &f.fds
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, of := range f.files {
		if of.fh != nil {
			of.fh.Close()
			of.fh, of.elem = nil, nil
		}
	}
	c.idle.Init()
	c.open = 0
}
