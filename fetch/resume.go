package fetch

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/shoal-p2p/shoal/content"
	"github.com/shoal-p2p/shoal/internal/fsx"
)

// StateDir is the folder, inside a fetch's output folder, that records an
// unfinished fetch: the root it is for and a log of what is done. It is
// removed when the fetch completes.
const StateDir = content.StateDirName

// fetchState is the durable progress of one fetch. The log holds lines,
// each ending in a tag only this home can make (logTagger), "f <i> <size>
// <mtime>": file i is complete under its final name, which then had that
// size and modification time. A line is written only after the file and
// its folder were fsynced; a torn last line is ignored. The log is trusted
// only from this user, and a final file only while its size and mtime are
// still what the log says. Chunks in temporary files are not logged: a
// resume re-verifies each against its CID (older logs' "c <i>" lines are
// ignored), so bytes changed on disk between runs are fetched again, never
// taken on the log's word.
type fetchState struct {
	dir string
	log *os.File
	tag logTagger

	mu      sync.Mutex
	pending []byte
}

// stateRoot returns the root an unfinished fetch in dir was for, if any:
// a state this user made, with a readable root file.
func stateRoot(dir string) (cid.Cid, bool) {
	sd := filepath.Join(dir, StateDir)
	for _, p := range []string{sd, filepath.Join(sd, "root")} {
		fi, err := os.Lstat(p)
		if err != nil || !ownedByUs(fi) {
			return cid.Undef, false
		}
	}
	b, err := os.ReadFile(filepath.Join(sd, "root"))
	if err != nil {
		return cid.Undef, false
	}
	c, err := cid.Decode(strings.TrimSpace(string(b)))
	return c, err == nil
}

// fileMark is what a fetch logged of a file it completed: the size and
// modification time the file had under its final name.
type fileMark struct {
	size  int64
	mtime int64 // unix nanoseconds
}

// matches reports whether fi is, unchanged, the file the mark was taken of.
func (m fileMark) matches(fi os.FileInfo) bool {
	return fi.Mode().IsRegular() && ownedByUs(fi) && fi.Size() == m.size && fi.ModTime().UnixNano() == m.mtime
}

// openState opens (or creates) the state of a fetch of root into dir, and
// returns the chunks and files its log names as done. A state left by a
// fetch of another root, or not made by this user, is discarded, never
// merged: the fetch starts clean.
func openState(dir string, root cid.Cid, key []byte) (*fetchState, map[int]fileMark, error) {
	tag := logTagger{key: key, prefix: root.String() + "\x00" + dir + "\x00"}
	sd := filepath.Join(dir, StateDir)
	if fi, err := os.Lstat(sd); err == nil && (!fi.IsDir() || !ownedByUs(fi)) {
		return nil, nil, fmt.Errorf("%s was not made by you: remove it, or fetch into another folder", sd)
	}
	if r, ok := stateRoot(dir); !ok || !r.Equals(root) {
		// Another fetch's state, or none: start clean (keeping the lock
		// file, which this fetch holds).
		ents, _ := os.ReadDir(sd)
		for _, e := range ents {
			if e.Name() == lockName {
				continue
			}
			if err := os.RemoveAll(filepath.Join(sd, e.Name())); err != nil {
				return nil, nil, fmt.Errorf("clearing the fetch state of another fetch: %w", err)
			}
		}
	}
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return nil, nil, err
	}
	if err := fsx.WriteFileAtomic(filepath.Join(sd, "root"), []byte(root.String()+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	files := map[int]fileMark{}
	logPath := filepath.Join(sd, "done")
	if fi, err := os.Lstat(logPath); err == nil && !ownedByUs(fi) {
		if err := os.Remove(logPath); err != nil {
			return nil, nil, err
		}
	}
	if b, err := os.ReadFile(logPath); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if body, ok := tag.check(sc.Text()); ok {
				parseLogLine(body, files)
			}
		}
		// A torn last line (no newline) was not fully written: drop it by
		// rewriting the log up to the last newline.
		if k := bytes.LastIndexByte(b, '\n'); k != len(b)-1 {
			if err := os.WriteFile(logPath, b[:k+1], 0o644); err != nil {
				return nil, nil, err
			}
		}
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := fsx.SyncDir(dir); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &fetchState{dir: dir, log: f, tag: tag}, files, nil
}

// logTagger authenticates log lines: each ends in an HMAC, keyed by a
// secret of this node's home, of the root, the folder and the line. A
// log planted by anyone without the key (another user, or a copy from
// elsewhere) names nothing: what it claims is re-hashed.
type logTagger struct {
	key    []byte
	prefix string
}

func (t logTagger) sum(body string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(t.prefix))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// line returns body with its tag, newline-ended.
func (t logTagger) line(body string) string { return body + " " + t.sum(body) + "\n" }

// check returns a line's body if its tag is right.
func (t logTagger) check(line string) (string, bool) {
	k := strings.LastIndexByte(line, ' ')
	if k < 0 || len(t.key) == 0 {
		return "", false
	}
	body := line[:k]
	return body, hmac.Equal([]byte(line[k+1:]), []byte(t.sum(body)))
}

// parseLogLine reads one log line: "c <i>" or "f <i> <size> <mtime>".
// Anything else (a torn line, the size-less "f <i>" of older versions) is
// ignored: what it names is checked by hashing instead.
func parseLogLine(line string, files map[int]fileMark) {
	fields := strings.Fields(line)
	num := func(k int) (int64, bool) {
		if k >= len(fields) {
			return 0, false
		}
		v, err := strconv.ParseInt(fields[k], 10, 64)
		return v, err == nil && v >= 0
	}
	i, ok := num(1)
	if !ok || len(fields) == 0 {
		return
	}
	switch {
	case fields[0] == "f" && len(fields) == 4:
		size, ok1 := num(2)
		mtime, ok2 := num(3)
		if ok1 && ok2 {
			files[int(i)] = fileMark{size: size, mtime: mtime}
		}
	}
}

// addFile queues the line for a file completed under its final name.
func (s *fetchState) addFile(i int, fi os.FileInfo) {
	s.mu.Lock()
	s.pending = append(s.pending, s.tag.line(fmt.Sprintf("f %d %d %d", i, fi.Size(), fi.ModTime().UnixNano()))...)
	s.mu.Unlock()
}

// flush makes the queued lines durable. syncData must first make durable
// what the lines name (the folders of renamed files).
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
	return fsx.SyncDir(s.dir)
}
