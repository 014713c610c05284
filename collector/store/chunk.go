package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/restrack/restrack/ring"
)

// Raw events are stored a chunk per commit (segment files, eventlog.go;
// the event_chunks table of schema 4): the events of one batch, each as
// varints in this order: time_ns (zigzag delta from the previous event of
// the chunk, starting at 0), proc_id, ppid (zigzag), tid (zigzag), op,
// access, flags, mode, result (zigzag), rflags, path_id, path2_id (0:
// none). Encoding costs tens of nanoseconds per event where a row per event
// cost microseconds; retention drops whole segments.

type eventRow struct {
	time        uint64
	proc        int64
	ppid, tid   int32
	op          ring.Op
	access      uint8
	flags, mode uint32
	result      int32
	rflags      uint16
	path, path2 int64 // 0: none
}

// chunkEncoder encodes a batch's events straight from the drained records:
// no intermediate row per event.
type chunkEncoder struct {
	b    []byte
	prev uint64
	n    int64
}

func (c *chunkEncoder) reset(b []byte) { c.b, c.prev, c.n = b, 0, 0 }

func (c *chunkEncoder) bytes() []byte { return c.b }

func (c *chunkEncoder) add(r *ring.Record, proc, path, path2 int64) {
	c.addRow(&eventRow{time: r.TimeNs, proc: proc, ppid: r.PPID, tid: r.TID, op: r.Op, access: r.Access,
		flags: r.Flags, mode: r.Mode, result: r.Result, rflags: r.RFlags, path: path, path2: path2})
}

func (c *chunkEncoder) addRow(e *eventRow) {
	b := binary.AppendVarint(c.b, int64(e.time-c.prev))
	c.prev = e.time
	b = binary.AppendUvarint(b, uint64(e.proc))
	b = binary.AppendVarint(b, int64(e.ppid))
	b = binary.AppendVarint(b, int64(e.tid))
	b = binary.AppendUvarint(b, uint64(e.op))
	b = binary.AppendUvarint(b, uint64(e.access))
	b = binary.AppendUvarint(b, uint64(e.flags))
	b = binary.AppendUvarint(b, uint64(e.mode))
	b = binary.AppendVarint(b, int64(e.result))
	b = binary.AppendUvarint(b, uint64(e.rflags))
	b = binary.AppendUvarint(b, uint64(e.path))
	c.b = binary.AppendUvarint(b, uint64(e.path2))
	c.n++
}

func encodeChunk(b []byte, rows []eventRow) []byte {
	var c chunkEncoder
	c.reset(b)
	for i := range rows {
		c.addRow(&rows[i])
	}
	return c.bytes()
}

var errBadChunk = errors.New("malformed event chunk")

// decodeChunk calls fn for each of the n events in b.
func decodeChunk(b []byte, n int64, fn func(*eventRow) error) error {
	var e eventRow
	var prev uint64
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	nextSigned := func() (int64, bool) {
		v, k := binary.Varint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	for range n {
		dt, ok1 := nextSigned()
		proc, ok2 := next()
		ppid, ok3 := nextSigned()
		tid, ok4 := nextSigned()
		op, ok5 := next()
		access, ok6 := next()
		flags, ok7 := next()
		mode, ok8 := next()
		result, ok9 := nextSigned()
		rflags, ok10 := next()
		path, ok11 := next()
		path2, ok12 := next()
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9 && ok10 && ok11 && ok12) {
			return errBadChunk
		}
		prev += uint64(dt)
		e = eventRow{time: prev, proc: int64(proc), ppid: int32(ppid), tid: int32(tid), op: ring.Op(op), access: uint8(access),
			flags: uint32(flags), mode: uint32(mode), result: int32(result), rflags: uint16(rflags), path: int64(path), path2: int64(path2)}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return errBadChunk
	}
	return nil
}

// chunkReader resolves the ids of decoded events, with caches: a chunk
// names the same processes and files over and over.
type chunkReader struct {
	tx      *sql.Tx
	dir     string
	procs   map[int64][2]int64 // id → pid, start_ns
	kinds   map[int64]string   // sources.id → kind
	globbed map[int64]bool
	glob    string
	// paths holds the path log of the snapshot (id i+1 at i), read on
	// the first event that names a path.
	paths  []string
	loaded bool
}

func (c *chunkReader) path(ctx context.Context, id int64) (string, error) {
	if id == 0 {
		return "", nil
	}
	if !c.loaded {
		st, err := readLogState(ctx, c.tx, pathsLog)
		if err != nil {
			return "", err
		}
		c.paths = make([]string, 0, st.n)
		if err := readPaths(c.dir, st, func(id int64, p []byte) error {
			for int64(len(c.paths)) < id-1 {
				c.paths = append(c.paths, "")
			}
			c.paths = append(c.paths, string(p))
			return nil
		}); err != nil {
			return "", err
		}
		c.loaded = true
	}
	if id < 1 || id > int64(len(c.paths)) {
		return "", fmt.Errorf("unknown file %d", id)
	}
	return c.paths[id-1], nil
}

// matches applies SQLite's own GLOB, so the filter means the same here as
// in a query on the files table.
func (c *chunkReader) matches(ctx context.Context, id int64) (bool, error) {
	if id == 0 {
		return false, nil
	}
	if m, ok := c.globbed[id]; ok {
		return m, nil
	}
	p, err := c.path(ctx, id)
	if err != nil {
		return false, err
	}
	var m bool
	if err := c.tx.QueryRowContext(ctx, "SELECT ? GLOB ?", p, c.glob).Scan(&m); err != nil {
		return false, fmt.Errorf("file %d: %w", id, err)
	}
	if len(c.globbed) > cacheLimit {
		clear(c.globbed)
	}
	c.globbed[id] = m
	return m, nil
}

// chunkEvents streams the events of event_chunks (after those of the
// legacy events table) matching f.
func (s *Store) chunkEvents(ctx context.Context, tx *sql.Tx, f EventFilter, fn func(*Event) error) error {
	c := &chunkReader{tx: tx, dir: s.dir, procs: map[int64][2]int64{}, kinds: map[int64]string{},
		globbed: map[int64]bool{}, glob: f.PathGlob}
	rows, err := tx.QueryContext(ctx, "SELECT id, pid, start_ns FROM processes")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, pid, start int64
		if err := rows.Scan(&id, &pid, &start); err != nil {
			rows.Close()
			return err
		}
		c.procs[id] = [2]int64{pid, start}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, "SELECT id, kind FROM sources")
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var kind string
		if err := rows.Scan(&id, &kind); err != nil {
			rows.Close()
			return err
		}
		c.kinds[id] = kind
	}
	if err := rows.Close(); err != nil {
		return err
	}

	var e Event
	decode := func(first, n int64, source int64, data []byte) error {
		seq := first
		kind := c.kinds[source]
		return decodeChunk(data, n, func(r *eventRow) error {
			seq++
			if f.AfterSeq > 0 && seq-1 <= f.AfterSeq {
				return nil
			}
			if !f.All && r.access == ring.AccessNone {
				return nil
			}
			p, ok := c.procs[r.proc]
			if !ok {
				return fmt.Errorf("event %d names unknown process %d", seq-1, r.proc)
			}
			if f.PID != 0 && int32(p[0]) != f.PID {
				return nil
			}
			if f.PathGlob != "" {
				m1, err := c.matches(ctx, r.path)
				if err != nil {
					return err
				}
				m2, err := c.matches(ctx, r.path2)
				if err != nil {
					return err
				}
				if !m1 && !m2 {
					return nil
				}
			}
			path, err := c.path(ctx, r.path)
			if err != nil {
				return err
			}
			path2, err := c.path(ctx, r.path2)
			if err != nil {
				return err
			}
			e = Event{Seq: seq - 1, TimeNs: r.time, PID: int32(p[0]), StartNs: uint64(p[1]), PPID: r.ppid, TID: r.tid,
				Op: r.op, Access: r.access, Flags: r.flags, Mode: r.mode, Result: r.result, RFlags: r.rflags,
				Path: path, Path2: path2, Source: kind}
			if err := fn(&e); err != nil {
				return callbackError{err}
			}
			return nil
		})
	}
	// Schema 4's chunks first: they are older than any segment.
	after := int64(-1)
	if f.AfterSeq > 0 {
		// Start at the chunk holding the first event not seen yet: a chunk
		// holds first_seq … first_seq+n-1.
		var start sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT max(first_seq) FROM event_chunks WHERE first_seq <= ?", f.AfterSeq+1).Scan(&start); err != nil {
			return err
		}
		if start.Valid {
			after = start.Int64 - 1
		}
	}
	for {
		// One chunk per query, closed before decoding: the decoder asks the
		// same transaction for paths.
		var first, n int64
		var source sql.NullInt64
		var data []byte
		err := tx.QueryRowContext(ctx, "SELECT first_seq, n, source_id, data FROM event_chunks WHERE first_seq > ? ORDER BY first_seq LIMIT 1", after).
			Scan(&first, &n, &source, &data)
		if err == sql.ErrNoRows {
			break
		}
		if err != nil {
			return err
		}
		after = first
		err = decode(first, n, source.Int64, data)
		if errors.Is(err, errBadChunk) {
			return fmt.Errorf("event chunk %d: %w", first, err)
		}
		if err != nil {
			return err
		}
	}
	segs, err := committedSegments(ctx, tx)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		if f.AfterSeq > 0 && sg.firstSeq+sg.n <= f.AfterSeq+1 {
			continue // a follower has seen all of it
		}
		err := segmentChunks(s.dir, sg, func(first, n int64, source uint64, payload []byte) error {
			err := decode(first, n, int64(source), payload)
			if errors.Is(err, errBadChunk) {
				return fmt.Errorf("event segment %s, chunk of event %d: %w", segmentName(sg.seg), first, err)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// committedSegments lists the segments of the caller's snapshot.
func committedSegments(ctx context.Context, tx *sql.Tx) ([]segment, error) {
	rows, err := tx.QueryContext(ctx, "SELECT seg, first_seq, n, bytes FROM event_segments ORDER BY seg")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var segs []segment
	for rows.Next() {
		var sg segment
		if err := rows.Scan(&sg.seg, &sg.firstSeq, &sg.n, &sg.bytes); err != nil {
			return nil, err
		}
		segs = append(segs, sg)
	}
	return segs, rows.Err()
}
