//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LockName is the file a writer holds an exclusive flock on.
const LockName = "restrack.lock"

// lockDir takes the store's writer lock. flock is released by the kernel when
// the holder dies, so a SIGKILLed collector never leaves a stale lock.
func lockDir(dir string) (func(), error) {
	p := filepath.Join(dir, LockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w (is the directory writable by you?)", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("store %s is in use by another writer (pid %s): stop it or choose another --store directory",
				dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Close() }, nil
}

// dirWritable says whether this process may create files in dir (SQLite's
// -shm index, which even a reader of a WAL database needs).
func dirWritable(dir string) bool { return unix.Access(dir, unix.W_OK) == nil }
