//go:build !linux

package ring

import (
	"os"

	"golang.org/x/sys/unix"
)

// Without fallocate(2) reserve writes zeros.
func fallocate(*os.File, int64) error { return unix.EOPNOTSUPP }
