package bench

import (
	"os"
	"syscall"
)

// maxRSSKiB is a finished process's peak resident set size in KiB (Linux
// and FreeBSD both report ru_maxrss in KiB), or -1 when unknown.
func maxRSSKiB(ps *os.ProcessState) int64 {
	if ps == nil {
		return -1
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss)
	}
	return -1
}
