package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
)

// StateDir is the folder, inside a fetch's output folder, that records an
// unfinished fetch: the root it is for and a log of what is done. It is
// removed when the fetch completes.
const StateDir = content.StateDirName

// ErrFolderBusy reports an output folder another fetch is writing to.
var ErrFolderBusy = errors.New("another fetch is writing to this folder")

// fetchState is the durable progress of one fetch. The log holds lines
// "c <i>" (chunk reference i of the manifest is written) and "f <i>" (file
// i is complete under its final name). A chunk is logged only after its
// file was fsynced, so a crash never leaves a logged chunk unwritten; a
// torn last line is ignored.
type fetchState struct {
	dir string
	log *os.File

	mu      sync.Mutex
	pending []byte
}

// stateRoot returns the root an unfinished fetch in dir was for, if any.
func stateRoot(dir string) (cid.Cid, bool) {
	b, err := os.ReadFile(filepath.Join(dir, StateDir, "root"))
	if err != nil {
		return cid.Undef, false
	}
	c, err := cid.Decode(strings.TrimSpace(string(b)))
	return c, err == nil
}

// openState opens (or creates) the state of a fetch of root into dir, and
// returns the chunks and files already logged as done.
func openState(dir string, root cid.Cid) (*fetchState, map[int]bool, map[int]bool, error) {
	sd := filepath.Join(dir, StateDir)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return nil, nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(sd, "root"), []byte(root.String()+"\n"), 0o644); err != nil {
		return nil, nil, nil, err
	}
	chunks, files := map[int]bool{}, map[int]bool{}
	if b, err := os.ReadFile(filepath.Join(sd, "done")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			kind, num, ok := strings.Cut(sc.Text(), " ")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				continue
			}
			switch kind {
			case "c":
				chunks[i] = true
			case "f":
				files[i] = true
			}
		}
		// A torn last line (no newline) was not fully written: drop it by
		// rewriting the log up to the last newline.
		if k := bytes.LastIndexByte(b, '\n'); k != len(b)-1 {
			if err := os.WriteFile(filepath.Join(sd, "done"), b[:k+1], 0o644); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(sd, "done"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return &fetchState{dir: dir, log: f}, chunks, files, nil
}

// add queues a log line; flush writes it.
func (s *fetchState) add(kind byte, i int) {
	s.mu.Lock()
	s.pending = append(s.pending, kind, ' ')
	s.pending = strconv.AppendInt(s.pending, int64(i), 10)
	s.pending = append(s.pending, '\n')
	s.mu.Unlock()
}

// flush makes the queued lines durable. syncData must first make durable
// every chunk the lines name.
func (s *fetchState) flush(syncData func() error) error {
	s.mu.Lock()
	lines := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(lines) == 0 {
		return nil
	}
	if err := syncData(); err != nil {
		return err
	}
	if _, err := s.log.Write(lines); err != nil {
		return err
	}
	return s.log.Sync()
}

// close closes the log, keeping the state for a later resume.
func (s *fetchState) close() error { return s.log.Close() }

// remove deletes the state: the fetch is complete.
func (s *fetchState) remove() error {
	s.log.Close()
	if err := os.RemoveAll(filepath.Join(s.dir, StateDir)); err != nil {
		return fmt.Errorf("removing fetch state: %w", err)
	}
	return syncDir(s.dir)
}
