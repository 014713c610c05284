package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/restrack/restrack/ring"
)

// SourceInfo names where records come from. ID tells one ring creation from
// another (the ring id); positions are only comparable within one ID.
type SourceInfo struct {
	ID   uint64
	Kind string // "ring", "fifo"
	Path string
}

// Checkpoint travels with a batch into its transaction: where the batch ends
// in its source and what the source lost so far.
type Checkpoint struct {
	SourceInfo
	Position  uint64 // next position to read: every record before it is in this or an earlier commit
	Bytes     uint64 // record bytes in this batch
	Abandoned uint64 // this batch: records skipped because their producer died mid-append
	Corrupted uint64 // this batch: records that failed validation
	// Producer-side drop counters, cumulative since the source was created.
	DroppedFull, DroppedTooBig uint64
}

// cacheLimit bounds each id cache (files, processes). Past it the cache is
// emptied and lookups fall back to the database: memory stays bounded on a
// week-long trace full of temporary files.
const cacheLimit = 200_000

type procKey struct {
	pid   int32
	start uint64
}

type procEntry struct {
	id                int64
	ppid              int32
	exe, cwd          string
	argv              []byte
	argvTrunc         bool
	first, last, exit uint64
	exited            bool
	dirty             bool
}

type aggKey struct {
	proc, file int64
	op         ring.Op
	write      bool
}

type aggVal struct {
	count, failures, first, last uint64
}

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

// writer turns batches into rows. It caches ids so that the per-event work
// is three map lookups; only new processes and files touch the database
// before the batch's bulk statements.
type writer struct {
	s *Store
	// mu serialises commits: `restrack run --mode ring+ebpf` runs one
	// collector per source on the same store.
	mu sync.Mutex

	procs         map[procKey]*procEntry
	procsComplete bool // every stored process is in procs: a miss is new
	files         map[string]int64
	filesComplete bool

	agg  map[aggKey]*aggVal
	slab []aggVal
	blob []byte
	// pending holds the aggregates committed as deltas but not yet folded
	// into the accesses table.
	pending  map[aggKey]aggVal
	lastFold time.Time
	dirty    []*procEntry
	rows     []eventRow
	args     []any

	nextSeq  int64 // sequence number of the next raw event
	retained int64 // raw events in event_chunks
	loaded   bool
}

func newWriter(s *Store) *writer {
	return &writer{s: s, agg: make(map[aggKey]*aggVal)}
}

// reset forgets every cached id: after a rolled-back transaction they may
// name rows that do not exist.
func (w *writer) reset() {
	w.procs, w.files, w.pending, w.loaded = nil, nil, nil, false
}

// load fills the caches from the database (when they fit) and the sequence
// window of the raw events.
func (w *writer) load(ctx context.Context, tx *sql.Tx) error {
	var legacyMax, chunkEnd, retained sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT max(seq) FROM events), (SELECT max(first_seq + n) FROM event_chunks),
		(SELECT sum(n) FROM event_chunks)`).Scan(&legacyMax, &chunkEnd, &retained); err != nil {
		return err
	}
	w.nextSeq = max(legacyMax.Int64+1, chunkEnd.Int64, 1)
	w.retained = retained.Int64
	w.files = make(map[string]int64)
	w.filesComplete = false
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM files").Scan(&n); err != nil {
		return err
	}
	if n <= cacheLimit/2 {
		rows, err := tx.QueryContext(ctx, "SELECT id, path FROM files")
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var p string
			if err := rows.Scan(&id, &p); err != nil {
				rows.Close()
				return err
			}
			w.files[p] = id
		}
		if err := rows.Close(); err != nil {
			return err
		}
		w.filesComplete = true
	}
	w.procs = make(map[procKey]*procEntry)
	w.procsComplete = false
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM processes").Scan(&n); err != nil {
		return err
	}
	if n <= cacheLimit/2 {
		rows, err := tx.QueryContext(ctx, procSelect)
		if err != nil {
			return err
		}
		for rows.Next() {
			k, e, err := scanProc(rows)
			if err != nil {
				rows.Close()
				return err
			}
			w.procs[k] = e
		}
		if err := rows.Close(); err != nil {
			return err
		}
		w.procsComplete = true
	}
	w.pending = map[aggKey]aggVal{}
	if err := readDeltas(ctx, tx, func(k aggKey, v aggVal) { mergeAgg(w.pending, k, v) }); err != nil {
		return err
	}
	w.lastFold = time.Now()
	w.loaded = true
	return nil
}

const procSelect = "SELECT id, pid, start_ns, ppid, exe, cwd, argv, argv_truncated, first_ns, last_ns, exit_ns FROM processes"

func scanProc(row interface{ Scan(...any) error }) (procKey, *procEntry, error) {
	var k procKey
	var e procEntry
	var start, first, last int64
	var exit sql.NullInt64
	if err := row.Scan(&e.id, &k.pid, &start, &e.ppid, &e.exe, &e.cwd, &e.argv, &e.argvTrunc, &first, &last, &exit); err != nil {
		return k, nil, err
	}
	k.start = uint64(start)
	e.first, e.last = uint64(first), uint64(last)
	e.exit, e.exited = uint64(exit.Int64), exit.Valid
	return k, &e, nil
}

// Commit stores a batch and its checkpoint in one transaction: either both
// are durable or neither is, which is what makes a restart exact.
func (s *Store) Commit(ctx context.Context, recs []ring.Record, cp Checkpoint) error {
	if s.db == nil {
		return s.errClosed()
	}
	if s.w == nil {
		return fmt.Errorf("commit to store %s: opened read-only", s.dir)
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if err := s.w.commit(ctx, recs, cp); err != nil {
		s.w.reset()
		return s.dbError("commit to", err)
	}
	return nil
}

func (w *writer) commit(ctx context.Context, recs []ring.Record, cp Checkpoint) error {
	tx, err := w.s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if !w.loaded {
		if err := w.load(ctx, tx); err != nil {
			return err
		}
	}
	clear(w.agg)
	w.slab = w.slab[:0]
	w.dirty = w.dirty[:0]
	w.rows = w.rows[:0]
	keepRows := !w.s.opts.DiscardEvents

	for i := range recs {
		r := &recs[i]
		p, err := w.proc(ctx, tx, r)
		if err != nil {
			return err
		}
		if r.Type == ring.TypeProc {
			w.procRecord(p, r)
			continue
		}
		var pathID, path2ID int64
		if len(r.Str1) > 0 {
			if pathID, err = w.file(ctx, tx, r.Str1); err != nil {
				return err
			}
		}
		if len(r.Str2) > 0 {
			if path2ID, err = w.file(ctx, tx, r.Str2); err != nil {
				return err
			}
		}
		if r.Access != ring.AccessNone {
			write := r.Access == ring.AccessWrite
			if pathID != 0 {
				w.count(aggKey{p.id, pathID, r.Op, write}, r)
			}
			// The second path of rename/link is touched as much as the
			// first (both change). A relative second path (a symlink's
			// target text) is not a file access.
			if path2ID != 0 && r.Str2[0] == '/' {
				w.count(aggKey{p.id, path2ID, r.Op, write}, r)
			}
		}
		if keepRows {
			w.rows = append(w.rows, eventRow{
				time: r.TimeNs, proc: p.id, ppid: r.PPID, tid: r.TID, op: r.Op, access: r.Access,
				flags: r.Flags, mode: r.Mode, result: r.Result, rflags: r.RFlags, path: pathID, path2: path2ID,
			})
		}
	}
	if err := w.flushProcs(ctx, tx); err != nil {
		return err
	}
	if err := w.appendDelta(ctx, tx); err != nil {
		return err
	}
	folding := w.foldDue()
	if folding {
		if err := w.fold(ctx, tx); err != nil {
			return err
		}
	}
	if err := w.flushRows(ctx, tx, cp.ID); err != nil {
		return err
	}
	if err := w.checkpoint(ctx, tx, uint64(len(recs)), cp); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if folding {
		clear(w.pending)
		w.lastFold = time.Now()
	}
	return nil
}

// proc finds or creates the process of a record and stretches its time span.
func (w *writer) proc(ctx context.Context, tx *sql.Tx, r *ring.Record) (*procEntry, error) {
	k := procKey{r.PID, r.StartNs}
	p, ok := w.procs[k]
	if !ok {
		if !w.procsComplete {
			row := tx.QueryRowContext(ctx, procSelect+" WHERE pid = ? AND start_ns = ?", r.PID, int64(r.StartNs))
			_, e, err := scanProc(row)
			switch {
			case err == nil:
				p = e
			case err != sql.ErrNoRows:
				return nil, err
			}
		}
		if p == nil {
			res, err := tx.ExecContext(ctx, "INSERT INTO processes (pid, start_ns, ppid, first_ns, last_ns) VALUES (?, ?, ?, ?, ?)",
				r.PID, int64(r.StartNs), r.PPID, int64(r.TimeNs), int64(r.TimeNs))
			if err != nil {
				return nil, err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return nil, err
			}
			p = &procEntry{id: id, ppid: r.PPID, first: r.TimeNs, last: r.TimeNs}
		}
		if len(w.procs) >= cacheLimit {
			clear(w.procs)
			w.procsComplete = false
		}
		w.procs[k] = p
	}
	if r.TimeNs < p.first {
		p.first = r.TimeNs
		w.touch(p)
	}
	if r.TimeNs > p.last {
		p.last = r.TimeNs
		w.touch(p)
	}
	return p, nil
}

func (w *writer) touch(p *procEntry) {
	if !p.dirty {
		p.dirty = true
		w.dirty = append(w.dirty, p)
	}
}

// procRecord applies a process record: exec replaces the program, exit
// closes the process. Later records win, as they describe the process now.
func (w *writer) procRecord(p *procEntry, r *ring.Record) {
	switch r.Op {
	case ring.OpProcExit:
		p.exit, p.exited = r.TimeNs, true
	default:
		if len(r.Str1) > 0 {
			p.exe = string(r.Str1)
		}
		if len(r.Str2) > 0 {
			p.cwd = string(r.Str2)
		}
		if len(r.Str3) > 0 || r.Op == ring.OpProcExec {
			p.argv = append(p.argv[:0:0], r.Str3...)
			p.argvTrunc = r.RFlags&ring.RFArgvTruncated != 0
		}
		if r.Op != ring.OpProcExec {
			p.ppid = r.PPID
		}
	}
	w.touch(p)
}

func (w *writer) file(ctx context.Context, tx *sql.Tx, path []byte) (int64, error) {
	if id, ok := w.files[string(path)]; ok { // no allocation: the compiler keys by the bytes
		return id, nil
	}
	p := string(path)
	var id int64
	if !w.filesComplete {
		err := tx.QueryRowContext(ctx, "SELECT id FROM files WHERE path = ?", p).Scan(&id)
		if err != nil && err != sql.ErrNoRows {
			return 0, err
		}
	}
	if id == 0 {
		res, err := tx.ExecContext(ctx, "INSERT INTO files (path) VALUES (?)", p)
		if err != nil {
			return 0, err
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, err
		}
	}
	if len(w.files) >= cacheLimit {
		clear(w.files)
		w.filesComplete = false
	}
	w.files[p] = id
	return id, nil
}

func (w *writer) count(k aggKey, r *ring.Record) {
	v, ok := w.agg[k]
	if !ok {
		if len(w.slab) == cap(w.slab) {
			// A new slab: earlier pointers into the old one stay valid.
			w.slab = make([]aggVal, 0, max(1024, 2*cap(w.slab)))
		}
		w.slab = append(w.slab, aggVal{first: r.TimeNs, last: r.TimeNs})
		v = &w.slab[len(w.slab)-1]
		w.agg[k] = v
	}
	// A connect in progress (non-blocking, EINPROGRESS) is a connection
	// made as far as the plan is concerned: its outcome comes later.
	if r.Result < 0 && r.RFlags&ring.RFInProgress == 0 {
		v.failures++
	} else {
		v.count++
	}
	v.first = min(v.first, r.TimeNs)
	v.last = max(v.last, r.TimeNs)
}

func (w *writer) flushProcs(ctx context.Context, tx *sql.Tx) error {
	if len(w.dirty) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `UPDATE processes SET ppid = ?, exe = ?, cwd = ?, argv = ?, argv_truncated = ?,
		first_ns = ?, last_ns = ?, exit_ns = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, p := range w.dirty {
		var exit any
		if p.exited {
			exit = int64(p.exit)
		}
		if _, err := st.ExecContext(ctx, p.ppid, p.exe, p.cwd, p.argv, p.argvTrunc, int64(p.first), int64(p.last), exit, p.id); err != nil {
			return err
		}
		p.dirty = false
	}
	return nil
}

// aggPerUpsert is how many aggregates one upsert statement carries: the
// per-statement overhead (binding, VDBE setup, database/sql) then counts
// once per 64 rows; the B-tree work per row remains.
const aggPerUpsert = 64

func upsertAccesses(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO accesses (proc_id, file_id, op, write, count, failures, first_ns, last_ns) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (proc_id, file_id, op, write) DO UPDATE SET
		count = count + excluded.count, failures = failures + excluded.failures,
		first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns)`)
	return b.String()
}

// fold upserts every pending aggregate into accesses and empties the delta
// table, inside the caller's transaction.
func (w *writer) fold(ctx context.Context, tx *sql.Tx) error {
	if len(w.pending) == 0 {
		return nil
	}
	var bulk *sql.Stmt
	if len(w.pending) >= aggPerUpsert {
		var err error
		if bulk, err = tx.PrepareContext(ctx, upsertAccesses(aggPerUpsert)); err != nil {
			return err
		}
		defer bulk.Close()
	}
	w.args = w.args[:0]
	left := len(w.pending)
	for k, v := range w.pending {
		w.args = append(w.args, k.proc, k.file, int64(k.op), k.write,
			int64(v.count), int64(v.failures), int64(v.first), int64(v.last))
		left--
		n := len(w.args) / 8
		if n < aggPerUpsert && left > 0 {
			continue
		}
		var err error
		if n == aggPerUpsert {
			_, err = bulk.ExecContext(ctx, w.args...)
		} else {
			_, err = tx.ExecContext(ctx, upsertAccesses(n), w.args...)
		}
		if err != nil {
			return err
		}
		w.args = w.args[:0]
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM access_deltas")
	return err
}

func (w *writer) flushRows(ctx context.Context, tx *sql.Tx, source uint64) error {
	if len(w.rows) == 0 {
		return nil
	}
	w.blob = encodeChunk(w.blob[:0], w.rows)
	if _, err := tx.ExecContext(ctx, "INSERT INTO event_chunks (first_seq, n, source_id, data) VALUES (?, ?, ?, ?)",
		w.nextSeq, len(w.rows), int64(source), w.blob); err != nil {
		return err
	}
	w.nextSeq += int64(len(w.rows))
	w.retained += int64(len(w.rows))
	return w.prune(ctx, tx)
}

// prune keeps the newest RetainEvents raw events, give or take a chunk:
// it deletes the oldest chunks while the rest still hold RetainEvents.
func (w *writer) prune(ctx context.Context, tx *sql.Tx) error {
	keep := w.s.opts.RetainEvents
	for keep >= 0 && w.retained > keep {
		var first, n int64
		if err := tx.QueryRowContext(ctx, "SELECT first_seq, n FROM event_chunks ORDER BY first_seq LIMIT 1").Scan(&first, &n); err != nil {
			return err
		}
		if w.retained-n < keep {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM event_chunks WHERE first_seq = ?", first); err != nil {
			return err
		}
		w.retained -= n
	}
	return nil
}

func (w *writer) checkpoint(ctx context.Context, tx *sql.Tx, records uint64, cp Checkpoint) error {
	now := time.Now().UnixNano()
	_, err := tx.ExecContext(ctx, `INSERT INTO sources (id, kind, path, position, records, bytes, dropped_full, dropped_toobig,
			abandoned, corrupted, first_unix_ns, last_unix_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			path = excluded.path, position = excluded.position,
			records = records + excluded.records, bytes = bytes + excluded.bytes,
			dropped_full = max(dropped_full, excluded.dropped_full),
			dropped_toobig = max(dropped_toobig, excluded.dropped_toobig),
			abandoned = abandoned + excluded.abandoned, corrupted = corrupted + excluded.corrupted,
			last_unix_ns = excluded.last_unix_ns`,
		int64(cp.ID), cp.Kind, cp.Path, int64(cp.Position), int64(records), int64(cp.Bytes),
		int64(cp.DroppedFull), int64(cp.DroppedTooBig), int64(cp.Abandoned), int64(cp.Corrupted), now, now)
	return err
}

// Resume returns the position after the last committed batch of source id,
// and whether the store has seen that source at all.
func (s *Store) Resume(ctx context.Context, id uint64) (uint64, bool, error) {
	if s.db == nil {
		return 0, false, s.errClosed()
	}
	var pos int64
	err := s.db.QueryRowContext(ctx, "SELECT position FROM sources WHERE id = ?", int64(id)).Scan(&pos)
	if err == sql.ErrNoRows {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.dbError("read", err)
	}
	return uint64(pos), true, nil
}
