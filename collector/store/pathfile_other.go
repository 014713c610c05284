//go:build !unix

package store

import (
	"io"
	"os"
)

// pathFile mirrors the path log's committed bytes on the heap where files
// cannot be mapped.
type pathFile struct {
	b []byte
}

func (p *pathFile) open(f *os.File, length int64) error {
	defer f.Close()
	p.b = make([]byte, length)
	_, err := io.ReadFull(io.NewSectionReader(f, 0, length), p.b)
	return err
}

// extend appends the chunk just committed.
func (p *pathFile) extend(length int64, chunk []byte) error {
	p.b = append(p.b, chunk...)
	return nil
}

func (p *pathFile) close() { *p = pathFile{} }
