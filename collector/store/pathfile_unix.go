//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// pathFile maps the path log read-only and shared: what the writer
// appends with write(2) is visible through the mapping (one page cache),
// so the index reads committed paths where they already are. The mapping
// reserves more than the file holds and is remapped when the file
// outgrows it; only committed bytes are ever read (past the file's end
// would fault).
type pathFile struct {
	b  []byte // the mapping; committed bytes at the front
	fd *os.File
}

// open maps f, whose first length bytes are committed. It keeps f.
func (p *pathFile) open(f *os.File, length int64) error {
	p.fd = f
	return p.remap(length)
}

func (p *pathFile) remap(length int64) error {
	size := int64(1) << 30
	for size < 2*length {
		size *= 2
	}
	b, err := syscall.Mmap(int(p.fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", p.fd.Name(), err)
	}
	if p.b != nil {
		_ = syscall.Munmap(p.b)
	}
	p.b = b
	return nil
}

// extend notes that the file now holds length committed bytes (the
// chunk written last among them).
func (p *pathFile) extend(length int64, _ []byte) error {
	if length <= int64(len(p.b)) {
		return nil
	}
	return p.remap(length)
}

func (p *pathFile) close() {
	if p.b != nil {
		_ = syscall.Munmap(p.b)
	}
	if p.fd != nil {
		p.fd.Close()
	}
	*p = pathFile{}
}
