//go:build !linux

package main

import "errors"

// Waiting for orphaned descendants needs a child subreaper, which this
// build does not set up (FreeBSD's procctl(PROC_REAP_ACQUIRE) would do).
func becomeSubreaper() error {
	return errors.New("waiting for descendants is implemented on Linux only")
}

func childPIDs() ([]int, bool) { return nil, false }

func reapChildren() {}
