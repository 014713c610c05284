package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.dbError("read trace from", err)
	}
	// One read transaction: processes, accesses and drops from one snapshot.
	defer func() { _ = tx.Rollback() }()

	t := &trace.Trace{}
	rows, err := tx.QueryContext(ctx, procSelect+" ORDER BY id")
	if err != nil {
		return nil, s.dbError("read trace from", err)
	}
	byID := map[int64]trace.ProcKey{}
	for rows.Next() {
		k, e, err := scanProc(rows)
		if err != nil {
			rows.Close()
			return nil, s.dbError("read trace from", err)
		}
		key := trace.ProcKey{PID: k.pid, StartNs: k.start}
		byID[e.id] = key
		t.Processes = append(t.Processes, trace.Process{
			Key: key, PPID: e.ppid, Exe: e.exe, Argv: splitArgv(e.argv), Cwd: e.cwd,
			FirstNs: e.first, LastNs: e.last, Exited: e.exited, UID: uint32(max(e.uid, 0)), UIDKnown: e.uid >= 0,
		})
	}
	if err := rows.Close(); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	trace.ResolveParents(t.Processes)

	// Aggregates and paths the writer has not folded yet are added to the
	// folded ones: the trace is complete up to the last commit.
	pending := map[aggKey]aggVal{}
	if err := readDeltas(ctx, tx, func(k aggKey, v aggVal) { mergeAgg(pending, k, v) }); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	// Files once, then the accesses without a join: joining cost 6× more
	// on a million accesses, and the planner indexes files by number
	// (Trace.Files, Access.File) instead of hashing paths.
	var maxID int64
	if err := tx.QueryRowContext(ctx, `SELECT max((SELECT coalesce(max(id), 0) FROM files),
		(SELECT coalesce(max(first_id + n - 1), 0) FROM file_deltas))`).Scan(&maxID); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	fileIdx := make([]int32, maxID+1) // files.id → 1 + index in t.Files; ids are dense
	addFile := func(id int64, p string) {
		if id < 1 || id > maxID {
			return // cannot happen within one snapshot
		}
		t.Files = append(t.Files, p)
		fileIdx[id] = int32(len(t.Files))
	}
	rows, err = tx.QueryContext(ctx, "SELECT id, path FROM files")
	if err != nil {
		return nil, s.dbError("read trace from", err)
	}
	for rows.Next() {
		var id int64
		var p string
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return nil, s.dbError("read trace from", err)
		}
		addFile(id, p)
	}
	if err := rows.Close(); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	if err := readFileDeltas(ctx, tx, addFile); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	access := func(procID, fileID int64, op ring.Op, write bool, v aggVal) error {
		if fileID < 1 || fileID > maxID || fileIdx[fileID] == 0 {
			return fmt.Errorf("access of process %d names unknown file %d", procID, fileID)
		}
		f := fileIdx[fileID]
		t.Accesses = append(t.Accesses, trace.Access{Proc: byID[procID], Path: t.Files[f-1], File: f, Op: op.String(), Write: write,
			Count: v.count, Failures: v.failures, FirstNs: v.first, LastNs: v.last})
		return nil
	}

	rows, err = tx.QueryContext(ctx, "SELECT proc_id, file_id, op, write, count, failures, first_ns, last_ns FROM accesses")
	if err != nil {
		return nil, s.dbError("read trace from", err)
	}
	for rows.Next() {
		var procID, fileID, op, count, failures, first, last int64
		var write bool
		if err := rows.Scan(&procID, &fileID, &op, &write, &count, &failures, &first, &last); err != nil {
			rows.Close()
			return nil, s.dbError("read trace from", err)
		}
		v := aggVal{count: uint64(count), failures: uint64(failures), first: uint64(first), last: uint64(last)}
		k := aggKey{proc: procID, file: fileID, op: ring.Op(op), write: write}
		if _, ok := pending[k]; ok {
			mergeAgg(pending, k, v)
			v = pending[k]
			delete(pending, k)
		}
		if err := access(procID, fileID, ring.Op(op), write, v); err != nil {
			rows.Close()
			return nil, s.dbError("read trace from", err)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, s.dbError("read trace from", err)
	}
	for k, v := range pending {
		if err := access(k.proc, k.file, k.op, k.write, v); err != nil {
			return nil, s.dbError("read trace from", err)
		}
	}
	lost, err := sumLost(ctx, tx)
	if err != nil {
		return nil, s.dbError("read trace from", err)
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
	Dir            string `json:"dir"`
	SchemaVersion  int64  `json:"schema_version"`
	Sources        int64  `json:"sources"`
	Records        uint64 `json:"records"` // records committed, all sources
	Bytes          uint64 `json:"bytes"`
	Processes      int64  `json:"processes"`
	Files          int64  `json:"files"`
	Accesses       int64  `json:"accesses"`      // folded aggregates (what v_accesses shows)
	AccessDeltas   int64  `json:"access_deltas"` // commits whose aggregates are not folded yet (the collector folds while idle)
	EventsRetained int64  `json:"events_retained"`
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
	var rec, by int64
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sources), (SELECT coalesce(sum(records), 0) FROM sources),
		(SELECT coalesce(sum(bytes), 0) FROM sources), (SELECT count(*) FROM processes), (SELECT count(*) FROM files) + (SELECT coalesce(sum(n), 0) FROM file_deltas),
		(SELECT count(*) FROM accesses), (SELECT count(*) FROM access_deltas),
		(SELECT count(*) FROM events) + (SELECT coalesce(sum(n), 0) FROM event_chunks) + (SELECT coalesce(sum(n), 0) FROM event_segments)`).
		Scan(&st.Sources, &rec, &by, &st.Processes, &st.Files, &st.Accesses, &st.AccessDeltas, &st.EventsRetained)
	if err != nil {
		return st, s.dbError("read", err)
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
