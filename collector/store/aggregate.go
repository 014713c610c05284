package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/restrack/restrack/ring"
)

// Aggregate deltas. Each commit stores its batch's aggregates as one row of
// access_deltas: per aggregate, uvarints proc_id, file_id, op, write (0/1),
// count, failures, first_ns, last_ns. Appending one blob costs tens of
// nanoseconds per aggregate; upserting into the accesses B-tree costs
// microseconds (SQLite compiled to Go), more than a traced program takes to
// make the next new (process, file) pair. So a commit never upserts: the
// writer folds the oldest deltas into accesses in slices (FoldSome), which
// the collector runs while the ring is empty, and all of them on Close.
// Readers (Trace) add the unfolded deltas: plans always see every commit;
// sqlite3 on accesses trails a busy collector.

// foldBacklog bounds the unfolded delta rows (and file_deltas rows) a
// commit leaves: past it, the commit folds a slice itself, so a collector
// that is never idle still keeps memory and reader work bounded.
const foldBacklog = 1024

// foldChunk bounds the entries (paths, aggregates) of one delta row, and
// so of one fold slice: about 15 ms of B-tree work, which a default ring
// absorbs at full speed.
const foldChunk = 4096

// foldRows is how many delta rows one fold slice takes.
const foldRows = 1

type aggKey struct {
	proc, file int64
	op         ring.Op
	write      bool
}

type aggVal struct {
	count, failures, first, last uint64
}

// aggregates counts a batch's accesses, appends them as a delta, and folds
// the deltas into the accesses table.
type aggregates struct {
	batch map[aggKey]*aggVal // this batch's aggregates
	slab  []aggVal           // backing store of batch's values: one allocation per 1 Ki new aggregates
	rows  int                // unfolded access_deltas rows
	blob  []byte
	keys  []aggKey
	args  []any
	// lastKey and lastVal memoise the previous record's aggregate: a
	// program that reads a file in a loop hits the same one in a row.
	lastKey aggKey
	lastVal *aggVal
}

func (a *aggregates) load(ctx context.Context, tx *sql.Tx) error {
	a.batch = make(map[aggKey]*aggVal)
	return tx.QueryRowContext(ctx, "SELECT count(*) FROM access_deltas").Scan(&a.rows)
}

// begin empties the batch.
func (a *aggregates) begin() {
	clear(a.batch)
	a.slab, a.lastVal = a.slab[:0], nil
}

func (a *aggregates) count(k aggKey, r *ring.Record) {
	v, ok := a.lastVal, a.lastVal != nil && a.lastKey == k
	if !ok {
		v, ok = a.batch[k]
	}
	if !ok {
		if len(a.slab) == cap(a.slab) {
			// A new slab: earlier pointers into the old one stay valid.
			a.slab = make([]aggVal, 0, max(1024, 2*cap(a.slab)))
		}
		a.slab = append(a.slab, aggVal{first: r.TimeNs, last: r.TimeNs})
		v = &a.slab[len(a.slab)-1]
		a.batch[k] = v
	}
	a.lastKey, a.lastVal = k, v
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

// appendDelta stores the batch's aggregates as access_deltas rows of at
// most foldChunk aggregates (what one fold slice takes) and returns how
// many rows it added.
func (a *aggregates) appendDelta(ctx context.Context, tx *sql.Tx, insert *sql.Stmt) (int, error) {
	st := tx.StmtContext(ctx, insert)
	rows, n := 0, 0
	b := a.blob[:0]
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := st.ExecContext(ctx, b)
		rows, n, b = rows+1, 0, b[:0]
		return err
	}
	for k, v := range a.batch {
		b = appendDeltaBytes(b, k, *v)
		if n++; n == foldChunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	err := flush()
	a.blob = b
	return rows, err
}

func appendDeltaBytes(b []byte, k aggKey, v aggVal) []byte {
	wr := uint64(0)
	if k.write {
		wr = 1
	}
	for _, x := range [...]uint64{uint64(k.proc), uint64(k.file), uint64(k.op), wr, v.count, v.failures, v.first, v.last} {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func mergeAgg(m map[aggKey]aggVal, k aggKey, v aggVal) {
	if old, ok := m[k]; ok {
		v.count += old.count
		v.failures += old.failures
		v.first = min(v.first, old.first)
		v.last = max(v.last, old.last)
	}
	m[k] = v
}

var errBadDelta = errors.New("malformed aggregate delta")

// readDeltas decodes every unfolded delta.
func readDeltas(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, fn func(aggKey, aggVal)) error {
	rows, err := q.QueryContext(ctx, "SELECT seq, data FROM access_deltas ORDER BY seq")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return err
		}
		if err := decodeDelta(b, fn); err != nil {
			return fmt.Errorf("access_deltas row %d: %w", seq, err)
		}
	}
	return rows.Err()
}

func decodeDelta(b []byte, fn func(aggKey, aggVal)) error {
	var f [8]uint64
	for len(b) > 0 {
		for i := range f {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errBadDelta
			}
			f[i], b = v, b[n:]
		}
		if f[3] > 1 || f[2] > 0xffff {
			return errBadDelta
		}
		fn(aggKey{proc: int64(f[0]), file: int64(f[1]), op: opOf(f[2]), write: f[3] == 1},
			aggVal{count: f[4], failures: f[5], first: f[6], last: f[7]})
	}
	return nil
}

// aggPerUpsert is how many aggregates one upsert statement carries: the
// per-statement overhead (binding, VDBE setup, database/sql) then counts
// once per 64 rows; the B-tree work per row remains.
const aggPerUpsert = 64

func upsertAccessesSQL(n int) string {
	return "INSERT INTO accesses (proc_id, file_id, op, write, count, failures, first_ns, last_ns) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ",") +
		` ON CONFLICT (proc_id, file_id, op, write) DO UPDATE SET
		count = count + excluded.count, failures = failures + excluded.failures,
		first_ns = min(first_ns, excluded.first_ns), last_ns = max(last_ns, excluded.last_ns)`
}

// foldSome upserts the aggregates of the oldest maxRows delta rows into
// accesses and deletes those rows, inside the caller's transaction; it
// returns how many rows it folded. Keys go in order, so the B-tree is
// walked once rather than at random.
func (a *aggregates) foldSome(ctx context.Context, tx *sql.Tx, bulk *sql.Stmt, maxRows int) (int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT seq, data FROM access_deltas ORDER BY seq LIMIT ?", maxRows)
	if err != nil {
		return 0, err
	}
	all := map[aggKey]aggVal{}
	var last int64
	n := 0
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&last, &b); err != nil {
			rows.Close()
			return 0, err
		}
		if err := decodeDelta(b, func(k aggKey, v aggVal) { mergeAgg(all, k, v) }); err != nil {
			rows.Close()
			return 0, fmt.Errorf("access_deltas row %d: %w", last, err)
		}
		n++
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	a.keys = a.keys[:0]
	for k := range all {
		a.keys = append(a.keys, k)
	}
	slices.SortFunc(a.keys, compareAggKeys)
	st := tx.StmtContext(ctx, bulk)
	for rest := a.keys; len(rest) > 0; {
		m := min(len(rest), aggPerUpsert)
		a.args = a.args[:0]
		for _, k := range rest[:m] {
			v := all[k]
			a.args = append(a.args, k.proc, k.file, int64(k.op), k.write,
				int64(v.count), int64(v.failures), int64(v.first), int64(v.last))
		}
		if m == aggPerUpsert {
			_, err = st.ExecContext(ctx, a.args...)
		} else {
			_, err = tx.ExecContext(ctx, upsertAccessesSQL(m), a.args...)
		}
		if err != nil {
			return 0, err
		}
		rest = rest[m:]
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM access_deltas WHERE seq <= ?", last)
	return n, err
}

func compareAggKeys(x, y aggKey) int {
	switch {
	case x.proc != y.proc:
		return cmp.Compare(x.proc, y.proc)
	case x.file != y.file:
		return cmp.Compare(x.file, y.file)
	case x.op != y.op:
		return cmp.Compare(x.op, y.op)
	case x.write != y.write:
		if x.write {
			return 1
		}
		return -1
	}
	return 0
}

// Fold moves every unfolded delta (files and aggregates) into the files and
// accesses tables now. The writer does it on Close; call it before handing
// the database to tools that read accesses directly.
func (s *Store) Fold(ctx context.Context) error {
	_, err := s.FoldSome(ctx, -1)
	return err
}

// FoldSome folds slices of the oldest deltas until budget has passed (a
// negative budget: until none is left), one transaction per slice, and
// reports whether deltas remain. The collector calls it while its source
// is empty: folding then costs no record its place in the ring.
func (s *Store) FoldSome(ctx context.Context, budget time.Duration) (bool, error) {
	if s.w == nil {
		return false, fmt.Errorf("fold store %s: opened read-only", s.dir)
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	for {
		more, err := w.foldSlice(ctx)
		if err != nil {
			w.reset()
			return true, s.dbError("fold", err)
		}
		if !more || budget >= 0 && time.Since(start) >= budget {
			return more, nil
		}
	}
}

// foldSlice folds one slice in its own transaction: the oldest unstored
// paths first (an aggregate may name them), then the oldest aggregates.
func (w *writer) foldSlice(ctx context.Context) (bool, error) {
	tx, err := w.begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := w.ensureLoaded(ctx, tx); err != nil {
		return false, err
	}
	if w.files.backlog() == 0 && w.aggs.rows == 0 {
		return false, nil
	}
	var filesDone, rowsDone int
	if w.files.backlog() > 0 {
		filesDone, err = w.files.materializeSome(ctx, tx, w.stmts.fileInsert, foldRows)
	} else {
		rowsDone, err = w.aggs.foldSome(ctx, tx, w.stmts.upsert, foldRows)
	}
	if err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	w.files.materialized(filesDone)
	w.aggs.rows -= rowsDone
	return w.files.backlog() > 0 || w.aggs.rows > 0, nil
}

func opOf(v uint64) ring.Op { return ring.Op(v) }
