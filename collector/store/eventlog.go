package store

import (
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

// Raw events live in append-only segment files beside the database
// (events-NNNNNNNN.log), not in SQLite: a SQLite row is written twice (WAL,
// then the checkpoint) through B-tree overflow pages, which cost the
// collector more than the events' encoding. A commit appends its batch as
// one chunk to the current segment and, in the same SQLite transaction as
// the source position, records the segment's committed length in
// event_segments. So:
//   - a chunk is durable exactly when its commit is: a writer that opens
//     the store cuts whatever follows the committed length (a chunk whose
//     commit never happened, or a torn write), and the source position
//     makes the collector re-read those records from the ring;
//   - readers read each segment up to its committed length in their
//     snapshot and never see a chunk being written;
//   - each chunk carries a CRC-32C of its header and payload: a chunk
//     damaged on disk is an error naming it, never wrong events.
//
// Chunk layout, little-endian: magic "RTEV", n (u32, events), first_seq
// (u64), source_id (u64), payload length (u32), CRC-32C (u32) of bytes
// 4..28 and the payload; then the payload (chunk.go's encoding).

const (
	chunkMagic     = "RTEV"
	chunkHeaderLen = 32
	// segmentBytes is where a segment is closed and the next begun, or
	// at an eighth of the events retention keeps (eventLog.segmentEvents):
	// retention deletes whole segments, so the window of the newest
	// RetainEvents is kept to within an eighth.
	segmentBytes = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func segmentName(seg int64) string { return fmt.Sprintf("events-%08d.log", seg) }

// segment is one row of event_segments.
type segment struct {
	seg      int64
	firstSeq int64 // sequence number of its first event
	n        int64 // events committed in it
	bytes    int64 // committed length of the file
}

// eventLog appends chunks for the writer.
type eventLog struct {
	dir string
	// segmentEvents closes a segment once it holds that many events; 0:
	// only segmentBytes does.
	segmentEvents int64
	segs          []segment // committed state, oldest first
	f             *os.File  // the last segment, open for appending; nil until needed
	buf           []byte    // the chunk being built: header, then payload
	// staged is a chunk appended to f whose commit is pending.
	staged struct {
		n, bytes int64
		newSeg   bool
	}
	doomed []int64 // segments deleted in the pending transaction: unlinked after it commits
}

// openEventLog reads the committed segments and cuts every segment file
// back to its committed length: what lies past it was never committed.
// Files of segments that are not in the table (pruned by a commit whose
// unlink did not happen, or begun by one that failed) are removed.
func openEventLog(ctx context.Context, tx *sql.Tx, dir string) (*eventLog, error) {
	segs, err := committedSegments(ctx, tx)
	if err != nil {
		return nil, err
	}
	l := &eventLog{dir: dir, segs: segs}
	known := map[string]bool{}
	for _, s := range l.segs {
		known[segmentName(s.seg)] = true
	}
	names, _ := filepath.Glob(filepath.Join(dir, "events-*.log"))
	for _, p := range names {
		if !known[filepath.Base(p)] {
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("remove uncommitted event segment: %w", err)
			}
		}
	}
	if len(l.segs) > 0 {
		last := l.segs[len(l.segs)-1]
		f, err := os.OpenFile(filepath.Join(dir, segmentName(last.seg)), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open event segment: %w", err)
		}
		fi, err := f.Stat()
		if err == nil && fi.Size() < last.bytes {
			err = fmt.Errorf("%s holds %d bytes but %d were committed: the file was cut short outside restrack (a power loss before the data reached the disk?); move the store aside",
				f.Name(), fi.Size(), last.bytes)
		}
		if err == nil {
			err = f.Truncate(last.bytes)
		}
		if err == nil {
			_, err = f.Seek(last.bytes, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		l.f = f
	}
	return l, nil
}

func (l *eventLog) close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// retained is how many events the committed segments hold.
func (l *eventLog) retained() int64 {
	var n int64
	for _, s := range l.segs {
		n += s.n
	}
	return n
}

// begin starts a chunk: the encoder appends the payload to the returned
// buffer, which stage takes back.
func (l *eventLog) begin() []byte {
	return append(l.buf[:0], make([]byte, chunkHeaderLen)...)
}

// stage writes the chunk (buf from begin, payload appended) to the current
// segment, or a new one (its row written in tx); the writer records the
// segment's new committed length in commit_state (pending). The file write happens before the transaction commits: if the commit
// fails, abort cuts it off again.
func (l *eventLog) stage(ctx context.Context, tx *sql.Tx, buf []byte, n, firstSeq int64, source uint64) error {
	l.buf = buf
	payload := len(buf) - chunkHeaderLen
	h := buf[:chunkHeaderLen]
	copy(h, chunkMagic)
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	binary.LittleEndian.PutUint64(h[8:], uint64(firstSeq))
	binary.LittleEndian.PutUint64(h[16:], source)
	binary.LittleEndian.PutUint32(h[24:], uint32(payload))
	crc := crc32.Update(crc32.Checksum(h[4:28], castagnoli), castagnoli, buf[chunkHeaderLen:])
	binary.LittleEndian.PutUint32(h[28:], crc)

	newSeg := len(l.segs) == 0
	if !newSeg {
		last := l.segs[len(l.segs)-1]
		newSeg = last.bytes > 0 && (last.bytes+int64(len(buf)) > segmentBytes || l.segmentEvents > 0 && last.n >= l.segmentEvents)
	}
	var cur segment
	if newSeg {
		cur.seg, cur.firstSeq = 1, firstSeq
		if len(l.segs) > 0 {
			cur.seg = l.segs[len(l.segs)-1].seg + 1
		}
		if err := l.close(); err != nil {
			return err
		}
		// The segment ending here gets its final length in its own row
		// (commit_state then names the new one), and the new one a row.
		if _, err := tx.ExecContext(ctx, `UPDATE segment_rows SET n = c.seg_n, bytes = c.seg_bytes
			FROM commit_state c WHERE c.id = 1 AND segment_rows.seg = c.seg AND c.seg_n IS NOT NULL`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO segment_rows (seg, first_seq, n, bytes) VALUES (?, ?, 0, 0)", cur.seg, cur.firstSeq); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(l.dir, segmentName(cur.seg)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("create event segment: %w", err)
		}
		l.f = f
	} else {
		cur = l.segs[len(l.segs)-1]
	}
	if _, err := l.f.Write(buf); err != nil {
		return fmt.Errorf("write event segment %s: %w", l.f.Name(), err)
	}
	l.staged.n, l.staged.bytes, l.staged.newSeg = n, int64(len(buf)), newSeg
	return nil
}

// pending is the segment being appended to and its committed events and
// length once the staged chunk commits, for commit_state; nil without
// segments.
func (l *eventLog) pending() (seg, n, bytes any) {
	switch {
	case l.staged.newSeg:
		s := int64(1)
		if len(l.segs) > 0 {
			s = l.segs[len(l.segs)-1].seg + 1
		}
		return s, l.staged.n, l.staged.bytes
	case len(l.segs) > 0:
		last := l.segs[len(l.segs)-1]
		return last.seg, last.n + l.staged.n, last.bytes + l.staged.bytes
	}
	return nil, nil, nil
}

// prune deletes, in tx, the oldest segments while the others still hold
// keep events; their files go once the transaction has committed.
func (l *eventLog) prune(ctx context.Context, tx *sql.Tx, keep int64) error {
	if keep < 0 {
		return nil
	}
	total := l.retained() + l.staged.n
	// The segment being appended to stays, unless this chunk began another.
	closed := len(l.segs) - 1
	if l.staged.newSeg {
		closed = len(l.segs)
	}
	for i := 0; i < closed; i++ {
		if total-l.segs[i].n < keep {
			break
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM segment_rows WHERE seg = ?", l.segs[i].seg); err != nil {
			return err
		}
		total -= l.segs[i].n
		l.doomed = append(l.doomed, l.segs[i].seg)
	}
	return nil
}

// committed applies the staged chunk and the pruning to the in-memory
// state once their transaction has committed, and unlinks pruned files.
func (l *eventLog) committed(firstSeq int64) {
	if l.staged.bytes > 0 {
		if l.staged.newSeg {
			seg := int64(1)
			if len(l.segs) > 0 {
				seg = l.segs[len(l.segs)-1].seg + 1
			}
			l.segs = append(l.segs, segment{seg: seg, firstSeq: firstSeq})
		}
		last := &l.segs[len(l.segs)-1]
		last.n += l.staged.n
		last.bytes += l.staged.bytes
	}
	for _, seg := range l.doomed {
		_ = os.Remove(filepath.Join(l.dir, segmentName(seg)))
		for i, s := range l.segs {
			if s.seg == seg {
				l.segs = append(l.segs[:i], l.segs[i+1:]...)
				break
			}
		}
	}
	l.staged.n, l.staged.bytes, l.staged.newSeg, l.doomed = 0, 0, false, l.doomed[:0]
}

// segmentChunks calls fn with every chunk of a segment file up to its
// committed length. A segment pruned since the caller's snapshot is
// skipped: retention removed it.
func segmentChunks(dir string, s segment, fn func(firstSeq, n int64, source uint64, payload []byte) error) error {
	f, err := os.Open(filepath.Join(dir, segmentName(s.seg)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	err = readChunks(f, chunkMagic, 0, s.bytes, func(n, first int64, source uint64, payload []byte) error {
		return fn(first, n, source, payload)
	})
	var ce chunkErr
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: the raw events from there on cannot be read (aggregates and plans are unaffected)", err)
	}
	return err
}

// chunkErr is a chunk that cannot be read back: it names the file and the
// byte offset.
type chunkErr struct {
	file string
	off  int64
	err  error
}

func (c chunkErr) Error() string {
	return fmt.Sprintf("%s, chunk at byte %d: %v", c.file, c.off, c.err)
}

func chunkError(file string, off int64, err error) error { return chunkErr{file, off, err} }
