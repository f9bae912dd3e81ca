//go:build unix

package fetch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/shoal-p2p/shoal/content"
)

// ownedByUs reports whether a file of the fetch state or output was made
// by this user and can be changed by nobody else: only such files are
// trusted on a log's word. Another local user can plant files in a shared
// output folder, but not files owned by us.
func ownedByUs(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid() && fi.Mode().Perm()&0o022 == 0
}

// lockName is the lock file in a fetch's state folder.
const lockName = "lock"

// dirLock is a fetch's hold on its output folder: an exclusive flock on
// DIR/.shoal-fetch/lock, held for the fetch's life. The kernel releases
// it when the fetch's process ends, however it ends (kill -9 included),
// so a lock is never left stale. The file holds the holder's PID.
type dirLock struct{ f *os.File }

// take locks dir's fetch state, creating the state folder if create; a
// lock already held is kept. Without create, a folder with no state is
// left unlocked (nothing to guard yet). It fails with ErrFolderBusy when
// another fetch, in this process or another, holds the lock.
func (l *dirLock) take(dir string, create bool) error {
	if l.f != nil {
		return nil
	}
	sd := filepath.Join(dir, StateDir)
	p := filepath.Join(sd, lockName)
	for range 3 {
		if create {
			if err := os.MkdirAll(sd, 0o755); err != nil {
				return err
			}
		}
		// The state folder is a folder, not a link to one elsewhere that
		// another user planted: nothing, not even the lock, is made
		// through it.
		if st, err := os.Lstat(sd); err == nil && !st.IsDir() {
			return fmt.Errorf("fetch state %s is not a folder (a symlink?): remove it to fetch here", content.Escape(sd))
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
		if errors.Is(err, os.ErrNotExist) && !create {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return busyError(dir, p)
			}
			return fmt.Errorf("fetch lock %s: %w", p, err)
		}
		// The holder may have completed, removing the state folder,
		// between our open and our lock: then the lock is on a file
		// nobody else will open. Keep it only if the path still names it.
		st, err1 := f.Stat()
		cur, err2 := os.Lstat(p)
		if err1 == nil && err2 == nil && os.SameFile(st, cur) {
			if f.Truncate(0) == nil {
				_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			}
			l.f = f
			return nil
		}
		f.Close()
	}
	return busyError(dir, p)
}

// release lets the folder go (the lock file stays with the state, if any).
func (l *dirLock) release() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// busyError names the process holding the lock, when it wrote its PID.
func busyError(dir, lockPath string) error {
	b, _ := os.ReadFile(lockPath)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		return fmt.Errorf("%s: %w (process %d holds it)", dir, ErrFolderBusy, pid)
	}
	return fmt.Errorf("%s: %w", dir, ErrFolderBusy)
}
