//go:build !linux

package pack

import "golang.org/x/sys/unix"

// mkfifoat: FreeBSD's mknodat makes FIFOs too.
func mkfifoat(dirfd int, name string, mode uint32) error {
	return unix.Mknodat(dirfd, name, mode|unix.S_IFIFO, 0)
}
