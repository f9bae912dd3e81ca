//go:build !unix

package fetch

import "io/fs"

// dirLock guards a fetch's output folder on unix systems only: elsewhere
// two fetches into one folder are not told apart.
type dirLock struct{}

func (l *dirLock) take(dir string, create bool) error { return nil }

func (l *dirLock) release() {}

// lockName is the lock file in a fetch's state folder.
const lockName = "lock"

// ownedByUs cannot tell owners apart here: nothing is trusted on a log's
// word, and every file an earlier run left is re-hashed.
func ownedByUs(fs.FileInfo) bool { return false }
