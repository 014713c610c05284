package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The trace's big tables — every distinct path, every (process, file, op,
// access class) aggregate — live in append-only log files beside the
// database, not in SQLite B-trees: inserting a row into a B-tree and its
// index cost SQLite compiled to Go one to three microseconds, and a trace
// where most events are new (process, file) pairs (a build, a scan) makes a
// new row per event. A log append costs tens of nanoseconds.
//
// They follow the raw events' segment files (eventlog.go): a commit
// appends one chunk per log (32-byte header with a CRC-32C, then the
// payload) and records the log's committed length in trace_logs in the
// same SQLite transaction as the source position. A writer that opens the
// store cuts each log back to its committed length (what follows was never
// committed); a reader reads each log up to the length of its snapshot.
//
//   - paths-GEN.log: the path table. A chunk holds paths with consecutive
//     ids (first id in the header); payload: uvarint length + bytes per
//     path. Never rewritten: paths are never pruned.
//   - accesses-GEN.log: the aggregates, as deltas (aggregate.go's
//     encoding); a reader sums the entries of one key. Compaction
//     (compact.go) rewrites the sum as the first chunks of the next
//     generation, so the file stays proportional to the distinct
//     aggregates, not to the commits.
//
// The SQL tables files and accesses are materialized from the logs on
// demand (materialize.go, `restrack sql`), not by the collector.

const (
	pathsLog    = "paths"
	accessesLog = "accesses"
	pathsMagic  = "RTPA"
	accessMagic = "RTAG"
)

func logName(name string, gen int64) string { return fmt.Sprintf("%s-%08d.log", name, gen) }

// logState is one row of trace_logs: what a snapshot holds of one log.
type logState struct {
	gen   int64
	bytes int64 // committed length of NAME-GEN.log
	n     int64 // entries committed
	// base: entries of the compacted snapshot the file begins with;
	// fresh: entries after it that were surely new keys (accesses only).
	base, fresh int64
}

func readLogState(ctx context.Context, q queryRower, name string) (logState, error) {
	var s logState
	err := q.QueryRowContext(ctx, "SELECT gen, bytes, n, base, fresh FROM trace_logs WHERE name = ?", name).
		Scan(&s.gen, &s.bytes, &s.n, &s.base, &s.fresh)
	return s, err
}

type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// appendLog is a log open for appending by the writer.
type appendLog struct {
	dir, name, magic string
	state            logState // committed
	f                *os.File
	buf              []byte // the chunk being built: header, then payload
	staged           struct {
		bytes, n, fresh int64
	}
}

// openAppendLog opens the committed generation of a log, cuts it back to
// its committed length and removes files of other generations (a
// compaction whose commit never came, or whose old file was not yet
// unlinked).
func openAppendLog(ctx context.Context, tx *sql.Tx, dir, name, magic string) (*appendLog, error) {
	st, err := readLogState(ctx, tx, name)
	if err != nil {
		return nil, fmt.Errorf("read trace_logs %s: %w", name, err)
	}
	l := &appendLog{dir: dir, name: name, magic: magic, state: st}
	if err := removeOtherGens(dir, name, st.gen); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, logName(name, st.gen)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < st.bytes {
		err = fmt.Errorf("%s holds %d bytes but %d were committed: the file was cut short outside restrack (a power loss before the data reached the disk?); move the store aside",
			f.Name(), fi.Size(), st.bytes)
	}
	if err == nil {
		err = f.Truncate(st.bytes)
	}
	if err == nil {
		_, err = f.Seek(st.bytes, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	l.f = f
	return l, nil
}

func removeOtherGens(dir, name string, keep int64) error {
	names, _ := filepath.Glob(filepath.Join(dir, name+"-*.log"))
	for _, p := range names {
		if filepath.Base(p) != logName(name, keep) {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove uncommitted %s log: %w", name, err)
			}
		}
	}
	return nil
}

func (l *appendLog) close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// begin starts a chunk: the caller appends the payload to the returned
// buffer and hands it to stage.
func (l *appendLog) begin() []byte {
	return append(l.buf[:0], make([]byte, chunkHeaderLen)...)
}

// stage writes the chunk (n entries, fresh of them surely new keys); the
// writer records the log's new committed length in its transaction
// (pending, commit_state). If the transaction does not commit, the next
// writer cuts the chunk off (the writer resets).
func (l *appendLog) stage(buf []byte, n, first, fresh int64) error {
	l.buf = buf
	if n == 0 {
		return nil
	}
	sealChunk(buf, l.magic, n, first, 0)
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	l.staged.bytes, l.staged.n, l.staged.fresh = int64(len(buf)), n, fresh
	return nil
}

// pending is the log's committed length, entries and fresh entries once
// the staged chunk commits: what the commit records in commit_state.
func (l *appendLog) pending() (bytes, n, fresh int64) {
	return l.state.bytes + l.staged.bytes, l.state.n + l.staged.n, l.state.fresh + l.staged.fresh
}

// committed applies the staged chunk once its transaction has committed.
func (l *appendLog) committed() {
	l.state.bytes += l.staged.bytes
	l.state.n += l.staged.n
	l.state.fresh += l.staged.fresh
	l.staged.bytes, l.staged.n, l.staged.fresh = 0, 0, 0
}

// sealChunk fills in the header of a chunk built after chunkHeaderLen
// reserved bytes: magic, n, first (first id / first sequence number),
// aux, payload length, CRC-32C of bytes 4..28 and the payload.
func sealChunk(buf []byte, magic string, n, first int64, aux uint64) {
	h := buf[:chunkHeaderLen]
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	binary.LittleEndian.PutUint64(h[8:], uint64(first))
	binary.LittleEndian.PutUint64(h[16:], aux)
	binary.LittleEndian.PutUint32(h[24:], uint32(len(buf)-chunkHeaderLen))
	crc := crc32.Update(crc32.Checksum(h[4:28], castagnoli), castagnoli, buf[chunkHeaderLen:])
	binary.LittleEndian.PutUint32(h[28:], crc)
}

// errLogGone: a log generation of the reader's snapshot was removed by a
// compaction that committed since; the reader starts over on a new one.
var errLogGone = errors.New("log generation replaced by a compaction")

// readLogChunks calls fn with every chunk of NAME-GEN.log up to the
// committed length of st, checking each chunk's magic and checksum.
func readLogChunks(dir, name, magic string, st logState, from int64, fn func(n, first int64, payload []byte) error) error {
	if st.bytes <= from {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, logName(name, st.gen)))
	if errors.Is(err, os.ErrNotExist) {
		return errLogGone
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return readChunks(f, magic, from, st.bytes, func(n, first int64, _ uint64, payload []byte) error { return fn(n, first, payload) })
}

// readChunks reads the chunks of f from byte from up to length.
func readChunks(f *os.File, magic string, from, length int64, fn func(n, first int64, aux uint64, payload []byte) error) error {
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(io.LimitReader(f, length-from), 1<<20)
	var h [chunkHeaderLen]byte
	var payload []byte
	for off := from; off < length; {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return chunkError(f.Name(), off, err)
		}
		if string(h[:4]) != magic {
			return chunkError(f.Name(), off, errors.New("no chunk header"))
		}
		size := int64(binary.LittleEndian.Uint32(h[24:]))
		if size > length-off-chunkHeaderLen {
			return chunkError(f.Name(), off, errors.New("chunk longer than the file's committed length"))
		}
		payload = append(payload[:0], make([]byte, size)...)
		if _, err := io.ReadFull(r, payload); err != nil {
			return chunkError(f.Name(), off, err)
		}
		if crc32.Update(crc32.Checksum(h[4:28], castagnoli), castagnoli, payload) != binary.LittleEndian.Uint32(h[28:]) {
			return chunkError(f.Name(), off, errors.New("checksum mismatch"))
		}
		if err := fn(int64(binary.LittleEndian.Uint32(h[4:])), int64(binary.LittleEndian.Uint64(h[8:])),
			binary.LittleEndian.Uint64(h[16:]), payload); err != nil {
			return err
		}
		off += chunkHeaderLen + size
	}
	return nil
}
