// Package fifo is the paper's original transport, kept as a baseline: the
// shim (RESTRACK_MODE=fifo) writes every record to a named pipe with one
// synchronous write(2), and this Reader takes them out one record at a
// time. The record bytes are the ring's (libcshim/ring_abi.h) with a zero
// stamp. It exists so the benchmark can compare both transports through the
// same hooks; the ring (package ring) is what restrack uses.
//
// A pipe keeps a write of up to PIPE_BUF (4096) bytes whole, so the shim
// drops larger records in this mode rather than risk interleaving them with
// another process's; it also holds a read end of its own so a dead reader
// never kills a traced program with SIGPIPE (the pipe fills, writes wait a
// bounded time, then drop).
package fifo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/restrack/restrack/ring"
)

// PipeBuf is the largest record the shim writes in FIFO mode.
const PipeBuf = 4096

const headerSize = 64

// ErrCorrupt: the bytes read are not a valid record. A pipe carries no
// framing besides the records themselves, so the stream cannot be
// resynchronised: the reader should be reopened.
var ErrCorrupt = errors.New("fifo: corrupt record")

// Create makes the named pipe with owner-only permissions.
func Create(path string) error {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("create fifo %s: %w", path, err)
	}
	return nil
}

// Reader reads records from a named pipe. It is not safe for concurrent use.
type Reader struct {
	f       *os.File
	buf     [PipeBuf]byte
	records uint64
}

// Open opens the pipe for reading. It opens it read-write so that it never
// sees end-of-file when the last writer goes away (traced processes come
// and go), and so that opening never blocks waiting for a writer.
func Open(path string) (*Reader, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		f.Close()
		return nil, fmt.Errorf("open fifo %s: not a named pipe", path)
	}
	return &Reader{f: f}, nil
}

// Close closes the pipe; a Next blocked in another goroutine returns.
func (r *Reader) Close() error { return r.f.Close() }

// SetDeadline bounds the wait of the next calls to Next (zero: none).
func (r *Reader) SetDeadline(t time.Time) error { return r.f.SetReadDeadline(t) }

// Records is how many records Next has returned.
func (r *Reader) Records() uint64 { return r.records }

// Next blocks until a record arrives and decodes it into rec. Its byte
// slices alias the reader's buffer and stay valid until the next call. It
// reads the 64-byte header, then the strings: a record per call, no
// batching — the paper's synchronous design, which the benchmark measures.
func (r *Reader) Next(rec *ring.Record) error {
	if _, err := io.ReadFull(r.f, r.buf[:headerSize]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(r.buf[8:12])
	if n < headerSize+3 || n > PipeBuf {
		return fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	if _, err := io.ReadFull(r.f, r.buf[headerSize:n]); err != nil {
		return err
	}
	if err := Decode(r.buf[:n], rec); err != nil {
		return err
	}
	r.records++
	return nil
}

// Decode validates one whole record (header and strings) and fills rec,
// whose slices alias b. The checks are the ring consumer's: the length adds
// up, type and access are known, and the strings are NUL-terminated (event
// paths contain no NUL).
func Decode(b []byte, rec *ring.Record) error {
	if err := ring.DecodeRecord(b, rec); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}
