package main

// defaultRingDir holds the default ring: /dev/shm is memory (tmpfs), so the
// ring's pages are never written back to a disk.
func defaultRingDir() string { return "/dev/shm" }
