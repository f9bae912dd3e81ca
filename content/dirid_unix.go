//go:build unix

package content

import (
	"fmt"
	"syscall"
)

// dirID names the folder at path by device and inode ("" when it is not
// a folder, a symbolic link included): a folder moved away and another
// made in its place, or a link put there, has another.
func dirID(path string) string {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
