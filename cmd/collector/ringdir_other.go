//go:build !linux

package main

import "os"

// defaultRingDir holds the default ring. FreeBSD has no /dev/shm: the ring
// goes to $TMPDIR or /tmp, which should be a tmpfs (tmpmfs="YES" in
// rc.conf, or -ring on a tmpfs mount; docs/freebsd.md), else the shared
// mapping's dirty pages are written back to disk by the syncer.
func defaultRingDir() string { return os.TempDir() }
