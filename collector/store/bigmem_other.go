//go:build !linux

package store

// bigAlloc: the Go heap, where no huge pages can be asked for.
func bigAlloc(n int) ([]byte, bool) { return make([]byte, n), false }

func bigFree([]byte, bool) {}
