package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/restrack/restrack/ring"
	"github.com/restrack/restrack/trace"
)

// Event is one stored raw event.
type Event struct {
	Seq     int64
	TimeNs  uint64
	PID     int32
	StartNs uint64
	PPID    int32
	TID     int32
	Op      ring.Op
	Access  uint8
	Flags   uint32
	Mode    uint32
	Result  int32
	RFlags  uint16
	Path    string // raw bytes; "" when the op has none
	Path2   string
	Source  string // kind of the source that recorded it ("ring", "ebpf"…); "" if unknown
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	PID      int32  // 0: any process
	PathGlob string // SQLite GLOB on path or path2 ('*' also matches '/'); "" = any
	All      bool   // include context-only events (fork, chdir: access none)
	AfterSeq int64  // only events after this Event.Seq (what a follower has not seen yet); 0 = all
}

// Events calls fn for each stored event matching f, in commit order. It
// streams: memory does not grow with the number of events.
func (s *Store) Events(ctx context.Context, f EventFilter, fn func(*Event) error) error {
	if s.db == nil {
		return s.errClosed()
	}
	// One read transaction: a consistent snapshot while the collector
	// goes on committing.
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.dbError("read events from", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.legacyEvents(ctx, tx, f, fn); err != nil {
		return err
	}
	err = s.chunkEvents(ctx, tx, f, fn)
	var cbErr callbackError
	if errors.As(err, &cbErr) {
		return cbErr.err
	}
	if err != nil {
		return s.dbError("read events from", err)
	}
	return nil
}

// callbackError carries an error of the caller's fn through the readers
// unwrapped.
type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }

// legacyEvents streams the events table, which stores written before
// schema 4 hold.
func (s *Store) legacyEvents(ctx context.Context, tx *sql.Tx, f EventFilter, fn func(*Event) error) error {
	q := `SELECT e.seq, e.time_ns, p.pid, p.start_ns, e.ppid, e.tid, e.op, e.access, e.flags, e.mode, e.result, e.rflags,
		coalesce(f1.path, ''), coalesce(f2.path, ''), coalesce(src.kind, '')
		FROM events e
		JOIN processes p ON p.id = e.proc_id
		LEFT JOIN files f1 ON f1.id = e.path_id
		LEFT JOIN files f2 ON f2.id = e.path2_id
		LEFT JOIN sources src ON src.id = e.source_id
		WHERE 1`
	var args []any
	if f.PID != 0 {
		q += " AND p.pid = ?"
		args = append(args, f.PID)
	}
	if f.PathGlob != "" {
		q += " AND (f1.path GLOB ? OR f2.path GLOB ?)"
		args = append(args, f.PathGlob, f.PathGlob)
	}
	if !f.All {
		q += " AND e.access != 0"
	}
	if f.AfterSeq > 0 {
		q += " AND e.seq > ?"
		args = append(args, f.AfterSeq)
	}
	q += " ORDER BY e.seq"
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return s.dbError("read events from", err)
	}
	defer rows.Close()
	var e Event
	for rows.Next() {
		var start, t int64
		var op, access, flags, mode, rflags int64
		if err := rows.Scan(&e.Seq, &t, &e.PID, &start, &e.PPID, &e.TID, &op, &access, &flags, &mode, &e.Result, &rflags, &e.Path, &e.Path2, &e.Source); err != nil {
			return s.dbError("read events from", err)
		}
		e.TimeNs, e.StartNs = uint64(t), uint64(start)
		e.Op, e.Access, e.Flags, e.Mode, e.RFlags = ring.Op(op), uint8(access), uint32(flags), uint32(mode), uint16(rflags)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.dbError("read events from", err)
	}
	return nil
}

// Trace loads everything the planner needs: every process with its parent
// resolved, every aggregated access, and the number of records lost. It
// reads the aggregates only, never the raw events.
func (s *Store) Trace(ctx context.Context) (*trace.Trace, error) {
	if s.db == nil {
		return nil, s.errClosed()
	}
	for attempt := 0; ; attempt++ {
		t, err := s.trace(ctx)
		// A compaction replaced the accesses log of this snapshot: the
		// next snapshot names the new one.
		if errors.Is(err, errLogGone) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, s.dbError("read trace from", err)
		}
		return t, nil
	}
}

func (s *Store) trace(ctx context.Context) (*trace.Trace, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	// One read transaction: processes, logs' lengths and drops from one
	// snapshot.
	defer func() { _ = tx.Rollback() }()

	t := &trace.Trace{}
	rows, err := tx.QueryContext(ctx, procSelect+" ORDER BY id")
	if err != nil {
		return nil, err
	}
	byID := map[int64]trace.ProcKey{}
	for rows.Next() {
		k, e, err := scanProc(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		key := trace.ProcKey{PID: k.pid, StartNs: k.start}
		byID[e.id] = key
		t.Processes = append(t.Processes, trace.Process{
			Key: key, PPID: e.ppid, Exe: e.exe, Argv: splitArgv(e.argv), Cwd: e.cwd,
			FirstNs: e.first, LastNs: e.last, Exited: e.exited, UID: uint32(max(e.uid, 0)), UIDKnown: e.uid >= 0,
		})
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	trace.ResolveParents(t.Processes)

	pst, err := readLogState(ctx, tx, pathsLog)
	if err != nil {
		return nil, err
	}
	ast, err := readLogState(ctx, tx, accessesLog)
	if err != nil {
		return nil, err
	}
	// The planner indexes files by number (Trace.Files, Access.File)
	// instead of hashing paths.
	t.Files = make([]string, 0, pst.n)
	fileIdx := make([]int32, 1, pst.n+1) // path id → 1 + index in t.Files; ids are dense
	if err := readPaths(s.dir, pst, func(id int64, p []byte) error {
		for int64(len(fileIdx)) <= id {
			fileIdx = append(fileIdx, 0)
		}
		t.Files = append(t.Files, string(p))
		fileIdx[id] = int32(len(t.Files))
		return nil
	}); err != nil {
		return nil, err
	}
	// The log holds one entry per aggregate per commit (fewer since its
	// last compaction): sorted by key, the entries of one aggregate are
	// adjacent and summed in one pass, and the planner gets them in a
	// stable order.
	entries := make([]aggEntry, 0, ast.base+ast.fresh)
	if err := readAggregates(s.dir, ast, 0, func(k aggKey, v aggVal) { entries = append(entries, aggEntry{key: k, val: v}) }); err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(x, y aggEntry) int { return compareAggKeys(x.key, y.key) })
	t.Accesses = make([]trace.Access, 0, len(entries))
	for i := 0; i < len(entries); {
		k, v := entries[i].key, entries[i].val
		for i++; i < len(entries) && entries[i].key == k; i++ {
			v = sumAgg(v, entries[i].val)
		}
		if k.file < 1 || k.file >= int64(len(fileIdx)) || fileIdx[k.file] == 0 {
			return nil, fmt.Errorf("access of process %d names unknown file %d", k.proc, k.file)
		}
		f := fileIdx[k.file]
		t.Accesses = append(t.Accesses, trace.Access{Proc: byID[k.proc], Path: t.Files[f-1], File: f, Op: k.op.String(), Write: k.write,
			Count: v.count, Failures: v.failures, FirstNs: v.first, LastNs: v.last})
	}
	lost, err := sumLost(ctx, tx)
	if err != nil {
		return nil, err
	}
	t.DroppedEvents = lost.Dropped()
	return t, nil
}

func splitArgv(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// Lost counts records that never reached the store, by cause.
type Lost struct {
	DroppedFull   uint64 `json:"dropped_full"`   // producers: ring full for the whole bounded wait
	DroppedTooBig uint64 `json:"dropped_toobig"` // producers: record larger than the ring allows
	Abandoned     uint64 `json:"abandoned"`      // producer died between reserving and publishing
	Corrupted     uint64 `json:"corrupted"`      // failed validation
}

// Dropped is every lost record, whatever the cause.
func (l Lost) Dropped() uint64 { return l.DroppedFull + l.DroppedTooBig + l.Abandoned + l.Corrupted }

func sumLost(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (Lost, error) {
	var l Lost
	var a, b, c, d int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(sum(dropped_full), 0), coalesce(sum(dropped_toobig), 0),
		coalesce(sum(abandoned), 0), coalesce(sum(corrupted), 0) FROM sources`).Scan(&a, &b, &c, &d)
	l.DroppedFull, l.DroppedTooBig, l.Abandoned, l.Corrupted = uint64(a), uint64(b), uint64(c), uint64(d)
	return l, err
}

// Stats summarises a store.
type Stats struct {
	Dir           string `json:"dir"`
	SchemaVersion int64  `json:"schema_version"`
	Sources       int64  `json:"sources"`
	Records       uint64 `json:"records"` // records committed, all sources
	Bytes         uint64 `json:"bytes"`
	Processes     int64  `json:"processes"`
	Files         int64  `json:"files"` // distinct paths (the path log)
	// Accesses is the rows of the SQL table accesses (what v_accesses
	// shows); AccessDeltas the aggregate entries logged since it was last
	// materialized (`restrack sql`; entries of one aggregate count once
	// per commit that touched it). Trace always has them all.
	Accesses       int64 `json:"accesses"`
	AccessDeltas   int64 `json:"access_deltas"`
	EventsRetained int64 `json:"events_retained"`
	Lost
	Dropped uint64 `json:"dropped"` // every lost record
}

// Stats counts what the store holds and what was lost.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Dir: s.dir}
	if s.db == nil {
		return st, s.errClosed()
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, s.dbError("read", err)
	}
	defer func() { _ = tx.Rollback() }()
	var rec, by, aggN, aggGen, sqlGen, sqlN int64
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sources), (SELECT coalesce(sum(records), 0) FROM sources),
		(SELECT coalesce(sum(bytes), 0) FROM sources), (SELECT count(*) FROM processes), (SELECT n FROM trace_logs WHERE name = 'paths'),
		(SELECT count(*) FROM accesses), (SELECT n FROM trace_logs WHERE name = 'accesses'), (SELECT gen FROM trace_logs WHERE name = 'accesses'),
		(SELECT sql_gen FROM trace_logs WHERE name = 'accesses'), (SELECT sql_n FROM trace_logs WHERE name = 'accesses'),
		(SELECT count(*) FROM events) + (SELECT coalesce(sum(n), 0) FROM event_chunks) + (SELECT coalesce(sum(n), 0) FROM event_segments)`).
		Scan(&st.Sources, &rec, &by, &st.Processes, &st.Files, &st.Accesses, &aggN, &aggGen, &sqlGen, &sqlN, &st.EventsRetained)
	if err != nil {
		return st, s.dbError("read", err)
	}
	st.AccessDeltas = aggN
	if sqlGen == aggGen {
		st.AccessDeltas -= sqlN
	}
	st.Records, st.Bytes = uint64(rec), uint64(by)
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&st.SchemaVersion); err != nil {
		return st, s.dbError("read", err)
	}
	if st.Lost, err = sumLost(ctx, tx); err != nil {
		return st, s.dbError("read", err)
	}
	st.Dropped = st.Lost.Dropped()
	return st, nil
}

// Check runs SQLite's integrity check (slow on a big store: it reads every
// page). A non-nil error names what is wrong.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.rdb.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return s.dbError("check", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.dbError("check", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("store %s is corrupted: %v", s.dir, problems)
	}
	return rows.Err()
}
