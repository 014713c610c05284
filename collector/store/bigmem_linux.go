package store

import "syscall"

// bigAlloc returns n zeroed bytes for the path index's large arrays:
// anonymous memory with transparent huge pages requested. The arrays of a
// trace of new paths grow to hundreds of MB; on 4 KiB pages each first
// touch was a page fault (a fifth of the writer's time in a new-pair
// trace), on 2 MiB pages one fault covers 512 of them. Memory the
// kernel will not map comes from the Go heap instead.
func bigAlloc(n int) ([]byte, bool) {
	if n < bigMin {
		return make([]byte, n), false
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n), false
	}
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE: a hint; none is fine too
	return b, true
}

// bigFree releases memory from bigAlloc.
func bigFree(b []byte, mapped bool) {
	if mapped {
		_ = syscall.Munmap(b[:cap(b)])
	}
}

// bigMin: smaller arrays come from the Go heap.
const bigMin = 1 << 20
